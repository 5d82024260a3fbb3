"""Score-CAM and Grad-CAM on the real SFace against independent step-by-step references."""

import cv2
import numpy as np
import pytest
import torch

from amva.cam import make_cam
from amva.cam.scorecam import weigh
from amva.models import to_tensor


def pearson(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def minmax(a):
    return (a - a.min()) / (a.max() - a.min())


@pytest.fixture(scope="module")
def original(demo):
    faces = demo[0]
    return to_tensor(faces["pixels"].sel(image=["obama/original/0"]).values)


@pytest.fixture(scope="module")
def scorecam_result(sface, original):
    cam = make_cam(sface, "scorecam", masks_per_pass=4, weighting="softmax")  # pytorch-grad-cam's definition
    torch.set_num_threads(2)
    return cam, cam(original)


def test_scorecam_maps_shape_range(scorecam_result):
    cam, res = scorecam_result
    assert cam.layer == "body.conv_14.act"
    assert res.maps.shape == (1, 112, 112) and res.native.shape == (1, 7, 7)
    assert float(res.native.min()) == 0.0 and float(res.native.max()) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 <= float(res.maps.min()) < 0.05 and 0.95 < float(res.maps.max()) <= 1.0
    assert res.weights.shape == (1, 1024)
    assert float(res.weights.sum()) == pytest.approx(1.0, abs=1e-5)


def test_scorecam_scores_match_naive_masking(sface, original, scorecam_result):
    """Channel scores recomputed one channel at a time with OpenCV upsampling."""
    cam, res = scorecam_result
    x = original[0].numpy().transpose(1, 2, 0)  # (112, 112, 3) in [0, 255]
    with torch.inference_mode():
        acts = sface.features(original)[0].numpy()
        own = sface(original)[0].numpy()
    for k in [0, 17, 256, 511, 1023]:
        up = cv2.resize(acts[k], (112, 112), interpolation=cv2.INTER_LINEAR)
        masked = x * minmax(up)[..., None]
        with torch.inference_mode():
            emb = sface(torch.from_numpy(masked.transpose(2, 0, 1)[None].astype(np.float32)))[0].numpy()
        cosine = emb @ own / np.linalg.norm(emb) / np.linalg.norm(own)
        assert cam.last_scores[0, k].item() == pytest.approx(cosine, abs=2e-3)
    scores = cam.last_scores[0].numpy().astype(np.float64)
    weights = np.exp(scores) / np.exp(scores).sum()
    np.testing.assert_allclose(res.weights[0].numpy(), weights, rtol=1e-4)
    combined = minmax(np.maximum((weights[:, None, None] * acts).sum(0), 0))
    np.testing.assert_allclose(res.native[0].numpy(), combined, atol=1e-5)
    up = cv2.resize(combined.astype(np.float32), (112, 112), interpolation=cv2.INTER_LINEAR)
    assert pearson(res.maps[0].numpy(), up) > 0.999
    # cosine scores lie in [-1, 1]: the softmax weights are nearly uniform (method.md §2)
    assert 1024 * weights.min() > 0.3 and 1024 * weights.max() < 3
    # the default weighting: the softmax of the scores' z-values, a temperature of one score spread
    z = (scores - scores.mean()) / scores.std()
    standardised = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(weigh(cam.last_scores, "standardised")[0].numpy(), standardised, rtol=1e-4)
    assert standardised.max() / standardised.min() > 100  # the spread that softmax at T = 1 flattens


def test_gradcam_matches_full_autograd(sface, demo):
    """Reference: gradients through the whole model with the input requiring grad."""
    faces = demo[0]
    x = to_tensor(faces["pixels"].isel(image=slice(0, 4)).values)
    res = make_cam(sface, "gradcam")(x)
    store = {}
    layer = dict(sface.named_modules())["body.conv_14.act"]
    handle = layer.register_forward_hook(lambda m, i, o: store.update(a=o))
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        emb = sface(xg)
        store["a"].retain_grad()
        (emb * torch.nn.functional.normalize(emb.detach(), dim=1)).sum().backward()
    handle.remove()
    a, g = store["a"].detach().numpy(), store["a"].grad.numpy()
    for i in range(4):
        ref = np.maximum((g[i].mean((1, 2))[:, None, None] * a[i]).sum(0), 0)
        np.testing.assert_allclose(res.native[i].numpy(), minmax(ref), atol=1e-4)
    assert res.maps.shape == (4, 112, 112)
    assert float(res.maps.min()) >= 0 and float(res.maps.max()) <= 1
    assert all(p.grad is None for p in sface.parameters())


def test_gradcam_refuses_zero_gradient_target_by_config_only(sface, demo):
    """The self-cosine's gradient at the image is ~0: documented, so check it is."""
    faces = demo[0]
    x = to_tensor(faces["pixels"].isel(image=slice(0, 2)).values)
    cam = make_cam(sface, "gradcam", target="self_cosine")
    _, _, grads = cam.capture(x)
    assert float(grads.abs().max()) < 1e-5


def test_unknown_method_and_layer(sface):
    with pytest.raises(ValueError, match="unknown CAM method"):
        make_cam(sface, "nope")
    with pytest.raises(ValueError, match="not in SFace"):
        make_cam(sface, "gradcam", layer="body.nope")
    with pytest.raises(ValueError, match="unknown CAM target"):
        make_cam(sface, "gradcam", target="nope")

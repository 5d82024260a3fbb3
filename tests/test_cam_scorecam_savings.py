"""Score-CAM's speed-ups against plain one-channel-at-a-time masking on the real SFace:
skipping constant channels, the frozen oneDNN graph (exact) and bf16 autocast (approximate)."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amva.cam import cam_from_config, make_cam
from amva.models import to_tensor


@pytest.fixture(scope="module")
def case(sface, demo):
    """One real face, 8 of its real layer channels (two made constant), its own embedding."""
    image = to_tensor(demo[0]["pixels"].values[:1])[0]
    with torch.inference_mode():
        acts = sface.features(image[None])[0, 100:108].clone()
        own = sface(image[None])[0]
        acts[2] = 0.3  # a constant channel: its mask is all zero
        acts[5] = 0.0
    return image, acts, own


def naive_scores(model, image, acts, own):
    """Each channel alone: OpenCV upsampling, min-max, mask, one forward, cosine."""
    x = image.numpy().transpose(1, 2, 0)
    out = []
    for a in acts.numpy():
        up = cv2.resize(a, (112, 112), interpolation=cv2.INTER_LINEAR)
        span = up.max() - up.min()
        mask = (up - up.min()) / span if span > 0 else np.zeros_like(up)
        masked = torch.from_numpy((x * mask[..., None]).transpose(2, 0, 1)[None].astype(np.float32))
        with torch.inference_mode():
            out.append(float(F.cosine_similarity(model(masked), own[None])[0]))
    return np.array(out)


@pytest.fixture(scope="module")
def reference(sface, case):
    return naive_scores(sface, *case)


@pytest.mark.parametrize("masks_per_pass", [3, 8])  # 3: the last batch is shorter than the traced one
def test_skipping_and_frozen_graph_match_naive(sface, case, reference, masks_per_pass):
    cam = make_cam(sface, "scorecam", masks_per_pass=masks_per_pass)
    scores = cam.scores(*case).numpy()
    np.testing.assert_allclose(scores, reference, atol=2e-4)
    assert scores[2] == scores[5]  # both constant channels share the black image's one forward
    assert cam._frozen is not None  # the CPU exact path really ran the frozen graph
    unfused = make_cam(sface, "scorecam", masks_per_pass=masks_per_pass, fuse=False).scores(*case).numpy()
    np.testing.assert_allclose(scores, unfused, atol=1e-5)


def test_autocast_option_is_close_not_exact(sface, case, reference):
    cam = cam_from_config(sface, {"method": "scorecam", "autocast": True, "masks_per_pass": 4, "batch_size": 2})
    assert cam.autocast and cam._frozen is None
    scores = cam.scores(*case).numpy()
    assert np.abs(scores - reference).max() < 0.05
    assert np.corrcoef(scores, reference)[0, 1] > 0.95
    assert cam._frozen is None  # bf16 runs the eager fused copy


def test_bad_options_name_the_argument(sface):
    with pytest.raises(ValueError, match="masks_per_pass = 0: must be >= 1"):
        make_cam(sface, "scorecam", masks_per_pass=0)
    with pytest.raises(ValueError, match="batch_size: not an option of CAM method 'scorecam'"):
        make_cam(sface, "scorecam", batch_size=4)  # images per batch are the caller's (extract), not the CAM's
    with pytest.raises(ValueError, match="weighting = 'soft': use one of 'standardised', 'softmax', 'raw'"):
        make_cam(sface, "scorecam", weighting="soft")
    with pytest.raises(ValueError, match="fuse = 1: expected bool"):
        make_cam(sface, "scorecam", fuse=1)

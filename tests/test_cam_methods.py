"""Grad-CAM++, LayerCAM, Eigen-CAM and the identity-cosine target on the real SFace,
each against an independent re-computation (full autograd, then the formula in numpy)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amva.cam import METHODS, make_cam
from amva.cam.gradcampp import GradCAMPlusPlus
from amva.models import to_tensor

LAYER = "body.conv_14.act"


def minmax(a):
    return (a - a.min()) / max(a.max() - a.min(), 1e-7)


@pytest.fixture(scope="module")
def x(demo):
    return to_tensor(demo[0]["pixels"].values[:4])


def autograd_reference(model, x, target):
    """Activations and d target / d activations with the whole model in the graph."""
    store = {}
    layer = dict(model.named_modules())[LAYER]
    handle = layer.register_forward_hook(lambda m, i, o: store.update(a=o))
    try:
        with torch.enable_grad():
            xg = x.clone().requires_grad_(True)
            emb = model(xg)
            store["a"].retain_grad()
            target(emb).sum().backward()
    finally:
        handle.remove()
    return store["a"].detach().double().numpy(), store["a"].grad.double().numpy()


@pytest.fixture(scope="module")
def reference(sface, x):
    return autograd_reference(sface, x, lambda e: (e * F.normalize(e.detach(), dim=1)).sum(1))


def check_range(res, n=4):
    assert res.maps.shape == (n, 112, 112) and res.native.shape == (n, 7, 7)
    for t in (res.maps, res.native):
        assert torch.isfinite(t).all() and float(t.min()) >= 0 and float(t.max()) <= 1
    assert float(res.native.amax(dim=(1, 2)).min()) == pytest.approx(1.0, abs=1e-6)


def test_registry_complete():
    assert set(METHODS) == {"scorecam", "gradcam", "gradcampp", "layercam", "eigencam", "activation_mean"}
    assert all(cls.name == name for name, cls in METHODS.items())
    assert METHODS["gradcampp"].default_target == METHODS["layercam"].default_target == "self_projection"
    assert METHODS["eigencam"].default_target is None


def test_activation_mean_is_the_channel_mean_by_hand(sface, x, reference):
    """The baseline CAM against a hand computation on the captured layer, and every CAM's r against it."""
    acts, _ = reference
    res = make_cam(sface, "activation_mean")(x)
    check_range(res)
    mean = np.maximum(acts.mean(axis=1), 0)
    lo, hi = mean.min(axis=(1, 2), keepdims=True), mean.max(axis=(1, 2), keepdims=True)
    native = (mean - lo) / (hi - lo)
    np.testing.assert_allclose(res.native.numpy(), native, atol=1e-5)
    up = F.interpolate(torch.from_numpy(native)[:, None], size=(112, 112), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(res.maps.numpy(), up[:, 0].clamp(0, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(res.baseline_r.numpy(), 1.0, atol=1e-9)
    grad = make_cam(sface, "gradcam")(x)
    hand = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(grad.maps.numpy(), res.maps.numpy(), strict=True)]
    np.testing.assert_allclose(grad.baseline_r.numpy(), hand, atol=1e-5)
    assert np.all(grad.baseline_r.numpy() < 0.99)  # Grad-CAM's weights do move the map


def test_gradcampp_matches_formula(sface, x, reference):
    res = make_cam(sface, "gradcampp")(x)
    check_range(res)
    a, g = reference
    for i in range(4):
        g2, g3 = g[i] ** 2, g[i] ** 3
        denom = 2 * g2 + a[i].sum((1, 2))[:, None, None] * g3
        alpha = np.where(denom != 0, g2 / np.where(denom != 0, denom, 1), 0)
        w = (alpha * np.maximum(g[i], 0)).sum((1, 2))
        np.testing.assert_allclose(res.weights[i].numpy(), w, rtol=1e-3, atol=1e-6 * np.abs(w).max())
        ref = minmax(np.maximum((w[:, None, None] * a[i]).sum(0), 0))
        np.testing.assert_allclose(res.native[i].numpy(), ref, atol=1e-4)
    assert all(p.grad is None for p in sface.parameters())


def test_gradcampp_degenerate_inputs_no_nan(sface):
    cam = GradCAMPlusPlus(sface, lambda e, r: e.sum(1))
    acts = torch.full((2, 8, 7, 7), 0.5)
    for grads in (torch.zeros_like(acts), torch.randn(acts.shape, generator=torch.Generator().manual_seed(0))):
        w = cam.weights(None, acts, None, grads)
        assert torch.isfinite(w).all()
        native = F.relu(cam.combine(acts, w, grads))
        assert torch.isfinite(native).all()
    assert float(cam.weights(None, acts, None, torch.zeros_like(acts)).abs().max()) == 0.0
    # all-equal activations give a constant map, which minmax sends to all zero
    from amva.cam.base import minmax as torch_minmax

    assert float(torch_minmax(F.relu(cam.combine(acts, w, grads))).abs().max()) == 0.0


def test_layercam_matches_formula(sface, x, reference):
    res = make_cam(sface, "layercam")(x)
    check_range(res)
    a, g = reference
    for i in range(4):
        ref = minmax(np.maximum((np.maximum(g[i], 0) * a[i]).sum(0), 0))
        np.testing.assert_allclose(res.native[i].numpy(), ref, atol=1e-4)
        np.testing.assert_allclose(res.weights[i].numpy(), np.maximum(g[i], 0).mean((1, 2)), rtol=1e-4, atol=1e-9)


def test_eigencam_matches_numpy_svd(sface, x):
    cam = make_cam(sface, "eigencam")
    assert cam.target is None and not cam.needs_gradients
    res = cam(x)
    check_range(res)
    with torch.inference_mode():
        acts = sface.features(x).double().numpy()
    for i in range(4):
        m = acts[i].reshape(acts.shape[1], -1).T  # (49, C)
        m = m - m.mean(0)
        _, _, vt = np.linalg.svd(m, full_matrices=False)
        proj = m @ vt[0]
        mean_map = acts[i].mean(0).ravel()
        if np.corrcoef(proj, mean_map)[0, 1] < 0:
            proj = -proj
        np.testing.assert_allclose(res.native[i].numpy().ravel(), minmax(np.maximum(proj, 0)), atol=1e-4)
        assert abs(float(np.abs(res.weights[i].numpy() @ vt[0]))) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="uses no target"):
        make_cam(sface, "eigencam", target="self_cosine")


def test_identity_cosine_target(sface, x):
    with torch.inference_mode():
        refs = sface(x.roll(1, dims=0))
    cam = make_cam(sface, "gradcam", target="identity_cosine")
    with pytest.raises(ValueError, match="needs references"):
        cam(x)
    res = cam(x, references=refs)
    check_range(res)
    a, g = autograd_reference(sface, x, lambda e: F.cosine_similarity(e, refs, dim=1))
    assert np.abs(g).max() > 1e-6  # not the self-cosine's zero gradient
    for i in range(4):
        ref = minmax(np.maximum((g[i].mean((1, 2))[:, None, None] * a[i]).sum(0), 0))
        np.testing.assert_allclose(res.native[i].numpy(), ref, atol=1e-4)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


class OneChannelNet(torch.nn.Module):
    """A toy embedding model whose 7x7 layer has 8 channels of distinct spatial patterns, and whose
    embedding reads channel 3 alone: a CAM whose weights matter must single that channel out."""

    default_cam_layer = "act"

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.body = torch.nn.Conv2d(3, 8, kernel_size=16, stride=16)  # 112 px -> 7x7
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Linear(49, 16)
        with torch.no_grad():
            self.body.weight.copy_(torch.randn(self.body.weight.shape, generator=gen) / 100)
            self.body.weight[3].abs_()  # the channel the embedding reads is active everywhere, as others partly
            self.body.bias.copy_(torch.linspace(-0.2, 0.2, 8))
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.body(x))[:, 3].flatten(1))


def test_a_cam_whose_weights_matter_singles_out_the_one_channel_the_embedding_reads():
    torch.manual_seed(1)
    model = OneChannelNet().eval()
    x = torch.rand(3, 3, 112, 112) * 255
    with torch.inference_mode():
        acts = model.act(model.body(x)).numpy()
    only = [corr(m, a[3]) for m, a in zip(make_cam(model, "gradcam")(x).native.numpy(), acts, strict=True)]
    mean = [corr(m, a[3]) for m, a in zip(make_cam(model, "activation_mean")(x).native.numpy(), acts, strict=True)]
    assert min(only) > 0.99, only  # Grad-CAM's weights are zero off channel 3
    assert max(mean) < 0.9, mean  # the unweighted mean is not channel 3's map
    assert np.all(make_cam(model, "gradcam")(x).baseline_r.numpy() < 0.9)


class TunedNet(torch.nn.Module):
    """A toy for Score-CAM: on a 7x7 grid of cells, channel k responds to the brightness of its own
    block of cells (gain 1, 0.05 elsewhere), and the embedding reads channel 3 alone. Only channel 3's
    mask keeps what the embedding reads, so a Score-CAM whose weights matter must single it out."""

    default_cam_layer = "act"

    def __init__(self) -> None:
        super().__init__()
        rows, cols = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
        block = (rows // 3) * 3 + cols // 3
        self.register_buffer("gains", torch.where(block[None] == torch.arange(8)[:, None, None], 1.0, 0.05))
        self.pool = torch.nn.AvgPool2d(16)  # 112 px -> 7x7 cells
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Linear(49, 16)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(16, 49, generator=torch.Generator().manual_seed(0)))
            self.head.bias.zero_()

    def layer(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pool(x.mean(1, keepdim=True)) * self.gains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(x)[:, 3].flatten(1))


def test_scorecam_standardised_weights_single_out_the_channel_whose_mask_keeps_the_embedding():
    torch.manual_seed(1)
    model = TunedNet().eval()
    x = torch.rand(3, 3, 112, 112) * 255
    acts = model.layer(x).numpy()

    def fit(res) -> list[float]:
        return [corr(m, a[3]) for m, a in zip(res.native.numpy(), acts, strict=True)]

    mean = make_cam(model, "activation_mean")(x)
    assert max(fit(mean)) < 0.2  # the unweighted mean does not find channel 3's block
    standardised = make_cam(model, "scorecam", fuse=False)(x)
    assert standardised.weights.argmax(dim=1).tolist() == [3, 3, 3]
    assert min(fit(standardised)) > 0.9 and np.all(standardised.baseline_r.numpy() < 0.3)
    # softmax at T = 1 ranks the channels the same but flattens them: a map halfway to the mean
    reference = make_cam(model, "scorecam", fuse=False, weighting="softmax")(x)
    assert np.all(np.asarray(fit(standardised)) > np.asarray(fit(reference)) + 0.1)
    assert np.all(reference.baseline_r.numpy() > standardised.baseline_r.numpy() + 0.15)

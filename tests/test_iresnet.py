"""iResNet (insightface arcface_torch layout): keys, strict loading, shapes, Grad-CAM."""

import pytest
import torch

from amva.cam import make_cam
from amva.models import load_model
from amva.models.iresnet import LAYERS, IResNet, load_iresnet

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def arcface_torch_keys(layers):
    """The state_dict keys of arcface_torch's iresnet, enumerated from its definition."""
    keys = ["conv1.weight", *(f"bn1.{k}" for k in BN), "prelu.weight"]
    for s, n in enumerate(layers, start=1):
        for b in range(n):
            p = f"layer{s}.{b}."
            keys += [*(p + f"bn1.{k}" for k in BN), p + "conv1.weight", *(p + f"bn2.{k}" for k in BN)]
            keys += [p + "prelu.weight", p + "conv2.weight", *(p + f"bn3.{k}" for k in BN)]
            if b == 0:
                keys += [p + "downsample.0.weight", *(p + f"downsample.1.{k}" for k in BN)]
    return [*keys, *(f"bn2.{k}" for k in BN), "fc.weight", "fc.bias", *(f"features.{k}" for k in BN)]


def randomized(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                v = torch.rand(t.shape, generator=gen) + 0.5 if name.endswith("running_var") else None
                t.copy_(v if v is not None else torch.randn(t.shape, generator=gen) * 0.05)
    return model.eval()


@pytest.mark.parametrize("depth", sorted(LAYERS))
def test_key_layout(depth):
    model = IResNet(depth)
    assert list(model.state_dict()) == arcface_torch_keys(LAYERS[depth])
    assert model.default_cam_layer == f"layer4.{LAYERS[depth][3] - 1}"
    assert model.state_dict()["fc.weight"].shape == (512, 512 * 49)


@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    path = tmp_path_factory.mktemp("iresnet") / "backbone.pth"
    torch.save(randomized(IResNet(18)).state_dict(), path)
    return path


def test_load_forward_and_head(r18):
    model = load_model({"kind": "iresnet", "depth": 18, "weights": str(r18)})
    assert isinstance(model, IResNet) and len(model.sha256) == 64
    assert model.input_size == (112, 112) and model.color_order == "RGB" and model.embedding_size == 512
    ref = randomized(IResNet(18))
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(1)) * 255
    store = {}
    handle = dict(model.named_modules())[model.default_cam_layer].register_forward_hook(
        lambda m, i, o: store.update(a=o)
    )
    with torch.inference_mode():
        emb = model(x)
        f = model.pre_dropout(x)
    handle.remove()
    assert emb.shape == (2, 512) and torch.isfinite(emb).all()
    assert store["a"].shape == (2, 512, 7, 7) and f.shape == (2, 512 * 49)
    with torch.inference_mode():
        assert torch.allclose(model.head(f), emb, atol=1e-5)
        assert torch.equal(model.feature_maps(x), store["a"])
    res = make_cam(model, "gradcam")(x)
    assert res.maps.shape == (2, 112, 112) and res.native.shape == (2, 7, 7)
    assert torch.isfinite(res.maps).all() and float(res.maps.min()) >= 0 and float(res.maps.max()) <= 1


def test_wrong_depth_names_file(r18, tmp_path):
    with pytest.raises(ValueError, match=r"backbone\.pth.*iResNet-34.*missing \['layer1\.2\."):
        load_iresnet(34, r18)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_iresnet(18, tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="needs"):
        load_model({"kind": "iresnet", "depth": 18})
    with pytest.raises(ValueError, match="depth"):
        IResNet(42)

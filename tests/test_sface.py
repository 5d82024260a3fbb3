"""The native SFace module must reproduce the bundled ONNX graph (run by onnxruntime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from amva.io import sha256_file
from amva.models import sface as sface_mod
from amva.models.sface import SFace, load_sface, sface_onnx_path

# ONNX tensors compared besides the embedding: last block's PReLU and the BN before Dropout.
EXTRA_OUTPUTS = ("conv_14_relu", "bn1")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SFace:
    return load_sface(tmp_path_factory.mktemp("sface_cache"))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """3 uniform-noise images (fixed seed) and one smooth synthetic image, RGB in [0, 255]."""
    noise = np.random.default_rng(0).uniform(0, 255, (3, 3, 112, 112))
    yy, xx = np.mgrid[0:112, 0:112] / 111.0
    smooth = np.stack([255 * yy, 255 * xx, 127.5 + 127.5 * np.sin(6 * yy + 4 * xx)])
    return torch.from_numpy(np.concatenate([noise, smooth[None]]).astype(np.float32))


@pytest.fixture(scope="module")
def onnx_reference(images: torch.Tensor) -> list[dict[str, np.ndarray]]:
    proto = onnx.load(str(sface_onnx_path()))
    graph = proto.graph
    # The file lists its (now quantised-away) fp32 weights as graph inputs; onnxruntime
    # would demand them as feeds, so keep only the image input.
    data = [i for i in graph.input if i.name == "data"]
    del graph.input[:]
    graph.input.extend(data)
    graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in EXTRA_OUTPUTS)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, {"data": x[None]}), strict=False)) for x in images.numpy()]


def test_matches_onnxruntime(model: SFace, images: torch.Tensor, onnx_reference: list) -> None:
    with torch.inference_mode():
        emb, feats, pre = model(images), model.features(images), model.pre_dropout(images)
    for i, ref in enumerate(onnx_reference):
        for ours, theirs in (
            (emb[i], ref["fc1"][0]),
            (feats[i], ref["conv_14_relu"][0]),
            (pre[i], ref["bn1"].reshape(-1)),
        ):
            scale = float(np.abs(theirs).max())
            err = float(np.abs(ours.numpy() - theirs).max())
            assert err < 1e-4 * scale, (i, err, scale)
    assert emb.shape == (4, model.embedding_size)


def test_cam_layer_hook_is_post_prelu(model: SFace, images: torch.Tensor) -> None:
    layer = model.get_submodule(model.default_cam_layer)
    seen: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda m, inp, out: seen.update(pre=inp[0], out=out))
    try:
        with torch.inference_mode():
            emb = model(images)
    finally:
        handle.remove()
    out, pre = seen["out"], seen["pre"]
    channels = model.layer_shapes()[model.default_cam_layer][0]
    assert out.shape == (len(images), channels, 7, 7)
    # the last block is the default layer, and it is the last one at 7x7
    assert model.default_cam_layer == list(model.layer_shapes())[-1]
    slope = model.get_submodule(model.default_cam_layer).weight.view(1, -1, 1, 1)
    torch.testing.assert_close(out, torch.where(pre >= 0, pre, slope * pre), rtol=0, atol=1e-6)
    assert not ((out < 0) & (pre >= 0)).any()  # negatives only where the slope applies
    assert (pre < 0).any() and not torch.equal(out, pre)  # really after the activation
    with torch.inference_mode():
        assert torch.equal(out, model.features(images))
        assert torch.equal(emb, model(images))  # the hook did not alter anything


def test_layer_shapes_match_runtime(model: SFace, images: torch.Tensor) -> None:
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
        for n in model.layer_shapes()
    ]
    with torch.inference_mode():
        model(images[:1])
    for h in handles:
        h.remove()
    assert shapes == model.layer_shapes()
    assert len(shapes) == 27 and shapes[model.default_cam_layer] == (1024, 7, 7)


def test_head_of_pre_dropout_is_forward(model: SFace, images: torch.Tensor) -> None:
    with torch.inference_mode():
        f = model.pre_dropout(images)
        assert f.shape == (len(images), 1024 * 7 * 7)
        assert torch.equal(model.head(f), model(images))


def test_loaded_frozen_and_described(model: SFace) -> None:
    assert not model.training and all(not m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert model.input_size == (112, 112) and model.color_order == "RGB"
    assert len(model.sha256) == 64 and model.sha256 == sha256_file(sface_onnx_path())
    torch.testing.assert_close(
        model.normalize(torch.tensor([0.0, 127.5, 255.0])), torch.tensor([-127.5 / 128, 0.0, 127.5 / 128])
    )


def test_cache_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, images: torch.Tensor) -> None:
    first = load_sface(tmp_path)
    cached = list(tmp_path.glob("*.pt"))
    assert [p.name for p in cached] == [f"sface_{first.sha256}.pt"]

    def no_conversion(path: Path) -> None:
        raise AssertionError("second load must read the cached .pt")

    monkeypatch.setattr(sface_mod, "_onnx_state_dict", no_conversion)
    second = load_sface(tmp_path)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not second.training and not any(p.requires_grad for p in second.parameters())
    with torch.inference_mode():
        assert torch.equal(first(images), second(images))


def test_dequantize_blocks() -> None:
    q = np.array([[0, 1, 2, 3, 4], [-1, -2, -3, -4, -5]], dtype=np.int8)
    scale = np.array([[1.0, 10.0], [0.5, 2.0]], dtype=np.float32)
    zp = np.array([[0, 1], [-1, 0]], dtype=np.int8)
    out = sface_mod._dequantize(q, scale, zp, axis=1, block_size=3)  # last block is ragged
    np.testing.assert_array_equal(out, [[0, 1, 2, 20, 30], [0, -0.5, -1, -8, -10]])
    assert out.dtype == np.float32

"""Our ONNX -> torch converter against onnxruntime, on the real SFace file and exported graphs."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from test_onnx_export import randomize_

from amva.datasets.align import FaceDetector, align, read_rgb
from amva.models import load_model, to_tensor
from amva.models.fuse import fuse_conv_bn
from amva.models.iresnet import IResNet
from amva.models.onnx_convert import BatchNormNode, OnnxFaceModel, UnsupportedOnnxModel, convert_onnx
from amva.models.onnx_verify import onnxruntime_session
from amva.models.sface import sface_onnx_path


@pytest.fixture(scope="module")
def faces(demo_sources: dict[str, Path]) -> np.ndarray:
    """The demo photos' largest faces, ArcFace-aligned 112x112 RGB uint8."""
    det = FaceDetector()
    out = []
    for path in demo_sources.values():
        img = read_rgb(path)
        out.append(align(img, det.detect(img)[0].landmarks)[0])
    return np.stack(out)


@pytest.fixture(scope="module")
def sface_onnx() -> OnnxFaceModel:
    return load_model({"kind": "onnx", "path": str(sface_onnx_path()), "mean": 0.0, "std": 1.0})


def test_sface_matches_onnxruntime(sface_onnx: OnnxFaceModel, faces: np.ndarray) -> None:
    x = to_tensor(faces)
    sess = onnxruntime_session(sface_onnx_path(), ("conv_14_relu",))
    ref = [sess.run(None, {"data": xi[None].numpy()}) for xi in x]
    seen: dict[str, torch.Tensor] = {}
    layer = sface_onnx.get_submodule(sface_onnx.default_cam_layer)
    hook = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("map", o))
    with torch.inference_mode():
        emb = sface_onnx(x)
    hook.remove()
    err = max(float(np.abs(emb[i].numpy() - r[0][0]).max()) for i, r in enumerate(ref))
    map_err = max(float(np.abs(seen["map"][i].numpy() - r[1][0]).max()) for i, r in enumerate(ref))
    assert err <= 1e-4 and map_err <= 1e-4, (err, map_err)
    assert sface_onnx.default_cam_layer == "ops.conv_14_relu" and seen["map"].shape == (len(x), 1024, 7, 7)
    assert emb.shape == (len(x), 128) and sface_onnx.embedding_size == 128
    fused = fuse_conv_bn(sface_onnx)
    with torch.inference_mode():
        torch.testing.assert_close(sface_onnx.head(sface_onnx.pre_dropout(x)), emb, rtol=0, atol=1e-5)
        assert sface_onnx.pre_dropout(x).shape == (len(x), 1024 * 49)
        torch.testing.assert_close(fused(x), emb, rtol=0, atol=1e-4 * float(emb.abs().max()))
    folded = [n for n, m in fused.ops.items() if m.op_type == "Identity"]
    assert len(folded) == 27 and all(isinstance(sface_onnx.ops[n], BatchNormNode) for n in folded)


def test_sface_same_person_closer(sface_onnx: OnnxFaceModel, faces: np.ndarray, demo_sources: dict) -> None:
    with torch.inference_mode():
        emb = torch.nn.functional.normalize(sface_onnx(to_tensor(faces)), dim=1)
    sim = dict(zip(demo_sources, emb, strict=True))
    same = min(float(sim["obama"] @ sim[b]) for b in ("obama2", "obama3"))
    other = max(float(sim[a] @ sim["biden"]) for a in ("obama", "obama2", "obama3"))
    assert same > other, (same, other)


def _random_iresnet_onnx(path: Path) -> IResNet:
    """A randomly initialised iResNet-18 (BN statistics and PReLU slopes too), exported."""
    model = randomize_(IResNet(18), seed=0)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(
            model,
            torch.zeros(1, 3, 112, 112),
            buf,
            dynamo=False,
            input_names=["data"],
            output_names=["embedding"],
            dynamic_axes={"data": {0: "n"}},
        )
    path.write_bytes(buf.getvalue())
    return model


def test_exported_iresnet_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faces: np.ndarray) -> None:
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path))  # the verdict of a throw-away file
    path = tmp_path / "r18.onnx"
    native = _random_iresnet_onnx(path)
    model = convert_onnx(path, mean=0.0, std=1.0)  # the export holds iResNet's own normalisation
    x = to_tensor(faces[:2])
    with torch.inference_mode():
        ours, theirs = model(x), native(x)
        fused = fuse_conv_bn(model)(x)
    ref = onnxruntime_session(path).run(None, {"data": x.numpy()})[0]
    scale = float(theirs.abs().max())
    assert float((ours - theirs).abs().max()) <= 1e-4 * scale
    assert float(np.abs(ours.numpy() - ref).max()) <= 1e-4 * scale
    torch.testing.assert_close(fused, ours)  # no accidental fusion of unrelated neighbours
    # auto layer = the last residual Add, the same map as the native default layer
    assert model.default_cam_layer.endswith("layer4_layer4_1_Add"), model.default_cam_layer
    maps = {}
    hooks = [
        model.get_submodule(model.default_cam_layer).register_forward_hook(lambda m, i, o: maps.__setitem__("ours", o)),
        native.get_submodule(native.default_cam_layer).register_forward_hook(lambda m, i, o: maps.__setitem__("n", o)),
    ]
    with torch.inference_mode():
        model(x), native(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(maps["ours"], maps["n"], rtol=1e-4, atol=1e-4 * float(maps["n"].abs().max()))
    assert model.embedding_size == 512 and model.input_size == (112, 112) and model.align_template == "arcface112"


def _op_zoo(path: Path) -> None:
    """A small graph with the shape-pattern and pooling operators insightface exports use."""
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    fc = rng.normal(0, 0.1, (8 * 4 * 4, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant", name="pad0"),
        helper.make_node("Conv", ["p", "w"], ["c"], strides=[1, 1], name="conv0"),
        helper.make_node("Relu", ["c"], ["r"], name="relu0"),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2], name="pool0"),
        helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["a", "slope"], ["ap"]),  # slope along W: not the per-channel case
        helper.make_node("GlobalAveragePool", ["ap"], ["g"]),
        helper.make_node("Transpose", ["ap"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Mul", ["t", "g"], ["tg"]),
        helper.make_node("Shape", ["tg"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["tg", "shape"], ["flat"]),
        helper.make_node("Dropout", ["flat"], ["d"]),
        helper.make_node("MatMul", ["d", "fc"], ["mm"], name="fc0"),
        helper.make_node("Div", ["mm", "two"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
        numpy_helper.from_array(fc, "fc"),
        numpy_helper.from_array(np.array([0.1, -0.2, 0.3, 0.5], np.float32), "slope"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    graph = helper.make_graph(
        nodes,
        "zoo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 16])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_operator_zoo_matches_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path))
    path = tmp_path / "zoo.onnx"
    _op_zoo(path)
    model = convert_onnx(path, input_size=16, color_order="BGR", mean=[10.0, 20.0, 30.0], std=[50.0, 60.0, 70.0])
    with pytest.raises(ValueError, match="takes 16x16 faces, got 112x112"):
        model(torch.zeros(1, 3, 112, 112))
    x = torch.from_numpy(np.random.default_rng(2).uniform(0, 255, (3, 3, 16, 16)).astype(np.float32))
    graph_in = (x.flip(1) - torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1)) / torch.tensor([50.0, 60.0, 70.0]).view(
        3, 1, 1
    )
    ref = onnxruntime_session(path).run(None, {"x": graph_in.numpy()})[0]
    with torch.inference_mode():
        ours = model(x)
    assert ours.shape == (3, 16)
    assert float(np.abs(ours.numpy() - ref).max()) <= 1e-5 * max(1.0, float(np.abs(ref).max()))
    assert model.default_cam_layer == "ops.Mul_8"  # walks back over Dropout and the Reshape pattern
    assert "ops.conv0" in dict(model.named_modules())


def test_unsupported_operator_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sig.onnx"
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["r"], ["y"], name="gate7")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 112, 112])],
    )
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedOnnxModel, match=r"sig\.onnx: node 'gate7' uses operator Sigmoid"):
        convert_onnx(path)
    with pytest.raises(ValueError, match="input is 112x112, the entry says"):
        convert_onnx(path, input_size=150)
    with pytest.raises(ValueError, match="needs 'path'"):
        load_model({"kind": "onnx"})

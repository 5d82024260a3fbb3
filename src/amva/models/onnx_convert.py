"""A generic ONNX face-recognition model as a torch module (our own small converter).

onnx2torch needs torchvision, which amva must not depend on, so this converter covers
the operators that published FR models (insightface's iResNets such as w600k_r50 and
glint360k r100, arcface r100, OpenCV's SFace) are made of, and nothing else:
an unsupported operator is an error naming it, its node and the file.

Design, for activation maps: every graph node that is not constant-folded becomes one
submodule of ``ops``, named after the node (characters other than letters, digits and
``_`` become ``_``), so a CAM layer is addressed as ``"ops.<node>"`` and a forward hook
on it sees that node's output. The nodes run in the file's topological order, with each
intermediate tensor freed after its last use. Weights become parameters, other
constants buffers; weight-only ``DequantizeLinear`` (SFace's int8 file) and any node
whose inputs are all constant are folded once at conversion.

Preprocessing is part of the module, as in the other FaceModels: it takes RGB in
[0, 255] and applies the entry's ``color_order``, ``mean`` and ``std``
(insightface's defaults: RGB, ``(x - 127.5) / 127.5``) before the graph.

Models as people export them: a static (batch 1) export bakes the batch into constant
shapes (``Reshape [1, -1]``, ``Flatten(axis=0)``), which at batch N silently merge the
images; such a Reshape/Flatten keeps the batch instead (:class:`ReshapeNode`). Every
converted file is checked against onnxruntime at first load (:mod:`amva.models.onnx_verify`).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from amva.io import sha256_file
from amva.models import check_input_size, he_normal
from amva.models.onnx_verify import ensure_verified

__all__ = [
    "SUPPORTED_OPS",
    "BatchNormNode",
    "ConvNode",
    "GemmNode",
    "MatMulNode",
    "Node",
    "OnnxFaceModel",
    "PReluNode",
    "ReshapeNode",
    "UnsupportedOnnxModel",
    "convert_onnx",
    "dequantize_linear",
    "load_onnx_model",
]


class UnsupportedOnnxModel(ValueError):
    """The ONNX file uses something this converter does not implement."""


def dequantize_linear(
    q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | int = 0, axis: int = 1, block_size: int = 0
) -> np.ndarray:
    """ONNX DequantizeLinear, (q - zero_point) * scale, per tensor / axis / block."""
    zp = np.broadcast_to(np.asarray(zero_point), np.shape(scale))
    axis %= max(q.ndim, 1)
    if block_size:  # scale has ceil(n / block_size) entries along `axis`
        idx = np.arange(q.shape[axis]) // block_size
        scale, zp = np.take(scale, idx, axis=axis), np.take(zp, idx, axis=axis)
    elif np.ndim(scale) == 1 and q.ndim > 1:  # per-axis
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    diff = q.astype(np.int32) - zp.astype(np.int32)
    return (diff.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# node modules


class Node(nn.Module):
    """One ONNX node: its constant inputs live here, its dynamic inputs come as arguments.

    ``slots`` lists the node's ONNX inputs in order: ``"in"`` (the next positional
    argument), ``"c<i>"`` (the buffer/parameter of that name) or ``""`` (omitted input).
    """

    def __init__(self, op_type: str, onnx_name: str, slots: list[str], fn: Callable[..., Tensor] | None = None) -> None:
        super().__init__()
        self.op_type, self.onnx_name, self.slots, self.fn = op_type, onnx_name, slots, fn

    def forward(self, *dynamic: Tensor) -> Tensor:
        it = iter(dynamic)
        return self.compute(*[next(it) if s == "in" else (getattr(self, s) if s else None) for s in self.slots])

    def compute(self, *inputs: Tensor | None) -> Tensor:
        """The operator on all its inputs in ONNX order (None for omitted ones)."""
        if self.fn is None:
            raise NotImplementedError(self.op_type)
        return self.fn(*inputs)

    def extra_repr(self) -> str:
        return f"{self.op_type} {self.onnx_name!r}"


class ReshapeNode(Node):
    """Reshape or Flatten that keeps a batch which a batch-1 export wrote into a constant.

    With ``keep_batch`` (set at conversion where the data input carries the batch and the
    target shape is a constant), the ONNX semantics (``0`` copies a dim unless
    ``allowzero``, ``-1`` is inferred, Flatten's ``axis``) are applied to one image,
    ``(1, *x.shape[1:])``, as at export; when that result still starts with the image's 1,
    each image is reshaped alike. Otherwise, and at batch 1, the node is applied as written.
    """

    keep_batch: bool = False

    def compute(self, x: Tensor, *rest: Tensor | None) -> Tensor:  # type: ignore[override]
        if self.keep_batch and x.shape[0] != 1:
            one = super().compute(x[:1], *rest)
            if one.ndim and one.shape[0] == 1:
                return x.reshape(x.shape[0], *one.shape[1:])
        return super().compute(x, *rest)


def _pads_2d(pads: Sequence[int] | None) -> tuple[int, int, int, int]:
    """ONNX [top, left, bottom, right] (default zeros)."""
    top, left, bottom, right = pads if pads else (0, 0, 0, 0)
    return int(top), int(left), int(bottom), int(right)


class ConvNode(Node):
    """Conv as ``nn.Conv2d`` (child ``conv``); asymmetric padding is applied before it."""

    def __init__(self, onnx_name: str, weight: Tensor, bias: Tensor | None, attrs: dict[str, Any], where: str) -> None:
        super().__init__("Conv", onnx_name, ["in"])
        if weight.ndim != 4:
            raise UnsupportedOnnxModel(f"{where}: only 2-D convolutions are supported, weight is {tuple(weight.shape)}")
        top, left, bottom, right = _conv_pads(attrs, where)
        cout, cin_g, kh, kw = weight.shape
        group = int(attrs.get("group", 1))
        self.pre_pad = None if (top, left) == (bottom, right) else (left, right, top, bottom)
        padding = (top, left) if self.pre_pad is None else (0, 0)
        self.conv = nn.Conv2d(
            cin_g * group,
            cout,
            (kh, kw),
            tuple(attrs.get("strides", (1, 1))),
            padding,
            tuple(attrs.get("dilations", (1, 1))),
            group,
            bias=bias is not None,
        )
        self.conv.weight = nn.Parameter(weight)
        if bias is not None:
            self.conv.bias = nn.Parameter(bias)

    def compute(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.conv(x if self.pre_pad is None else F.pad(x, self.pre_pad))


def _conv_pads(attrs: dict[str, Any], where: str) -> tuple[int, int, int, int]:
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise UnsupportedOnnxModel(f"{where}: auto_pad={auto_pad} is not supported (re-export with explicit pads)")
    return _pads_2d(attrs.get("pads"))


class BatchNormNode(Node):
    """Inference BatchNormalization over channel axis 1, any rank (N, C, ...)."""

    def __init__(self, onnx_name: str, scale: Tensor, bias: Tensor, mean: Tensor, var: Tensor, eps: float) -> None:
        super().__init__("BatchNormalization", onnx_name, ["in"])
        self.weight, self.bias = nn.Parameter(scale), nn.Parameter(bias)
        self.register_buffer("running_mean", mean)
        self.register_buffer("running_var", var)
        self.eps = eps

    def reset_parameters(self) -> None:
        """Identity statistics and affine (the sanity check's randomisation)."""
        for value, tensor in ((1.0, self.weight), (0.0, self.bias), (0.0, self.running_mean), (1.0, self.running_var)):
            tensor.data.fill_(value)

    def compute(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class PReluNode(Node):
    """PRelu with its slope (ONNX shape, broadcast numpy-style) as a parameter."""

    def __init__(self, onnx_name: str, slope: Tensor) -> None:
        super().__init__("PRelu", onnx_name, ["in"])
        self.weight = nn.Parameter(slope)

    def reset_parameters(self) -> None:
        """torch's PReLU initial slope."""
        self.weight.data.fill_(0.25)

    def compute(self, x: Tensor) -> Tensor:  # type: ignore[override]
        w = self.weight
        if w.numel() == 1 or (w.ndim == x.ndim - 1 and w.shape[1:].numel() == 1):  # per channel (axis 1)
            return F.prelu(x, w.reshape(-1))  # fused kernel; torch.where costs 3 passes
        return torch.where(x >= 0, x, x * w)


class GemmNode(Node):
    """Gemm ``alpha * A' @ B' + beta * C`` with B stored as a Linear-style (out, in) weight."""

    def __init__(self, onnx_name: str, b: Tensor, c: Tensor | None, attrs: dict[str, Any]) -> None:
        super().__init__("Gemm", onnx_name, ["in"])
        self.trans_a = bool(attrs.get("transA", 0))
        self.alpha, self.beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        self.weight = nn.Parameter(b if attrs.get("transB", 0) else b.T.contiguous())
        self.bias = None if c is None else nn.Parameter(c * self.beta)

    def reset_parameters(self) -> None:
        """He normal, as amva.cam.randomise resets linear layers."""
        he_normal(self.weight, self.bias)

    def compute(self, a: Tensor) -> Tensor:  # type: ignore[override]
        y = F.linear(a.T if self.trans_a else a, self.weight)
        if self.alpha != 1.0:
            y = y * self.alpha
        return y if self.bias is None else y + self.bias


class MatMulNode(Node):
    """MatMul with a constant right operand held as a parameter."""

    def __init__(self, onnx_name: str, weight: Tensor) -> None:
        super().__init__("MatMul", onnx_name, ["in"])
        self.weight = nn.Parameter(weight)

    def reset_parameters(self) -> None:
        """He normal on the (in, out) weight seen as (out, in)."""
        he_normal(self.weight.T, None)

    def compute(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.matmul(x, self.weight)


# ---------------------------------------------------------------------------------------
# parameter-free operators: (inputs..., attrs) -> tensor


def _ints(t: Tensor | None) -> list[int]:
    return [] if t is None else [int(v) for v in t.reshape(-1).tolist()]


def _div(a: Tensor, b: Tensor) -> Tensor:
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def _flatten(x: Tensor, axis: int = 1) -> Tensor:
    axis %= max(x.ndim, 1) if axis < 0 else x.ndim + 1
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _reshape(x: Tensor, shape: Tensor, allowzero: int = 0) -> Tensor:
    dims = _ints(shape)
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _gather(data: Tensor, indices: Tensor, axis: int = 0) -> Tensor:
    axis %= data.ndim
    idx = indices.long() % data.shape[axis]
    out = data.index_select(axis, idx.reshape(-1).to(data.device))
    return out.reshape((*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :]))


def _unsqueeze(x: Tensor, axes: Tensor | None = None, attr_axes: Sequence[int] = ()) -> Tensor:
    wanted = _ints(axes) or list(attr_axes)
    rank = x.ndim + len(wanted)
    for a in sorted(a % rank for a in wanted):
        x = x.unsqueeze(a)
    return x


def _pool_pads(attrs: dict[str, Any], where: str) -> tuple[int, int]:
    top, left, bottom, right = _conv_pads(attrs, where)
    if (top, left) != (bottom, right):
        raise UnsupportedOnnxModel(f"{where}: asymmetric pooling pads {attrs.get('pads')} are not supported")
    return top, left


def _pad(x: Tensor, *rest: Any) -> Tensor:
    """ONNX Pad, pads as input (opset >= 11) or attribute; per-axis ``axes`` is not supported."""
    *inputs, attrs = rest
    pads, value, axes = (*inputs, None, None, None)[:3]
    if axes is not None:
        raise ValueError("Pad with an 'axes' input is not supported")
    p = _ints(pads) or list(attrs.get("pads", ()))
    half = len(p) // 2
    torch_pads: list[int] = []
    for i in reversed(range(half)):  # torch: last dim first, (begin, end) pairs
        torch_pads += [p[i], p[i + half]]
    mode = attrs.get("mode", b"constant")
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[
        mode.decode() if isinstance(mode, bytes) else mode
    ]
    if mode != "constant":
        return F.pad(x, torch_pads, mode=mode)
    fill = float(value.reshape(-1)[0]) if value is not None and value.numel() else float(attrs.get("value", 0.0))
    return F.pad(x, torch_pads, value=fill)


def _elementwise(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    return lambda a, b, attrs: fn(a, b)


# op -> (a function of (inputs..., attrs)); the attrs dict is always passed last.
_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "Relu": lambda x, attrs: F.relu(x),
    "Add": _elementwise(torch.add),
    "Sub": _elementwise(torch.sub),
    "Mul": _elementwise(torch.mul),
    "Div": _elementwise(_div),
    "Flatten": lambda x, attrs: _flatten(x, int(attrs.get("axis", 1))),
    "Reshape": lambda x, shape, attrs: _reshape(x, shape, int(attrs.get("allowzero", 0))),
    "Transpose": lambda x, attrs: x.permute(*(attrs.get("perm") or reversed(range(x.ndim)))),
    "Identity": lambda x, attrs: x,
    "Dropout": lambda x, *rest: x,  # inference: identity
    "Shape": lambda x, attrs: torch.tensor(
        x.shape[attrs.get("start", 0) : attrs.get("end", x.ndim)], dtype=torch.int64, device=x.device
    ),
    "Gather": lambda data, idx, attrs: _gather(data, idx, int(attrs.get("axis", 0))),
    "Unsqueeze": lambda x, *rest: _unsqueeze(x, rest[0] if len(rest) == 2 else None, rest[-1].get("axes", ())),
    "Concat": lambda *xs: torch.cat([x.to(xs[0].device) for x in xs[:-1]], dim=int(xs[-1]["axis"])),
    "GlobalAveragePool": lambda x, attrs: x.mean(dim=tuple(range(2, x.ndim)), keepdim=True),
    "Pad": _pad,
    "MatMul": lambda a, b, attrs: torch.matmul(a, b),
}

SUPPORTED_OPS: tuple[str, ...] = tuple(
    sorted(
        {*_FUNCTIONS, "Conv", "BatchNormalization", "PRelu", "Gemm", "Constant", "MaxPool", "AveragePool"}
        | {"DequantizeLinear"}
    )
)
"""Operators the converter implements (DequantizeLinear on constant weights only)."""


def _pool_fn(op: str, attrs: dict[str, Any], where: str) -> Callable[..., Tensor]:
    kernel = tuple(attrs["kernel_shape"])
    if len(kernel) != 2:
        raise UnsupportedOnnxModel(f"{where}: only 2-D pooling is supported, kernel {kernel}")
    stride = tuple(attrs.get("strides", (1, 1)))
    pad = _pool_pads(attrs, where)
    ceil = bool(attrs.get("ceil_mode", 0))
    if op == "MaxPool":
        dil = tuple(attrs.get("dilations", (1, 1)))
        return lambda x: F.max_pool2d(x, kernel, stride, pad, dil, ceil_mode=ceil)
    include = bool(attrs.get("count_include_pad", 0))
    return lambda x: F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil, count_include_pad=include)


# ---------------------------------------------------------------------------------------
# the graph


@dataclass(frozen=True)
class _Step:
    module: str  # key in ``ops``
    inputs: tuple[str, ...]  # dynamic input tensor names, in slot order
    output: str
    free: tuple[str, ...]  # tensors not needed after this step


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _module_name(node: Any, index: int, taken: set[str]) -> str:
    name = re.sub(r"\W", "_", node.name) or f"{node.op_type}_{index}"
    if name in taken:
        name = f"{name}_{index}"
    taken.add(name)
    return name


class OnnxFaceModel(nn.Module):
    """An ONNX FR graph run node by node; input RGB float in [0, 255], NCHW.

    ``default_cam_layer`` is the entry's ``layer`` or, by default, the last node on the
    path to the output with an (N, C, h, w) output of spatial size h·w > 1, not counting
    nodes that only normalise or copy (BatchNormalization, Dropout, Flatten, Reshape,
    Identity): e.g. the last residual Add of an iResNet, the last PRelu of SFace or of a
    MobileFaceNet (the one before its global depthwise conv).

    The embedding layer is the last Conv/Gemm/MatMul on that path whose input alone
    determines the output: a Gemm after Flatten, a 1x1 conv after a global depthwise
    conv, a kxk conv over the last feature map. ``pre_dropout`` is its input flattened to
    (N, F) (what SER-FIQ drops out), ``head`` the graph from there to the embedding.
    """

    align_template: str = "arcface112"
    embedding_size: int
    default_cam_layer: str
    split: str | None  # the embedding layer's input tensor
    split_shape: tuple[int, ...]  # its shape per image

    def __init__(
        self,
        path: Path,
        input_size: tuple[int, int] = (112, 112),
        color_order: str = "RGB",
        mean: Sequence[float] | float = 127.5,
        std: Sequence[float] | float = 127.5,
        sha256: str = "",
    ) -> None:
        super().__init__()
        self.path, self.input_size, self.color_order, self.sha256 = path, tuple(input_size), color_order, sha256
        if color_order not in ("RGB", "BGR"):
            raise ValueError(f"{path}: color_order must be 'RGB' or 'BGR', got {color_order!r}")
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1))
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1))
        self.ops = nn.ModuleDict()
        self.module_of: dict[str, str] = {}  # ONNX node name and output tensor name -> "ops.<module>"
        self._build(path)

    # -- conversion -------------------------------------------------------------------

    def _build(self, path: Path) -> None:
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(path))
        graph = proto.graph
        const: dict[str, Tensor] = {
            t.name: torch.from_numpy(np.array(numpy_helper.to_array(t))) for t in graph.initializer
        }
        consumed = {i for n in graph.node for i in n.input}
        # files may still list inputs nothing reads (SFace: its pre-quantisation weights)
        inputs = [i for i in graph.input if i.name not in const and i.name in consumed]
        if len(inputs) != 1:
            raise UnsupportedOnnxModel(f"{path}: expected one image input, got {[i.name for i in inputs]}")
        self.input_name, self.output_name = inputs[0].name, graph.output[0].name
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) == 4 and None not in dims[2:] and tuple(dims[2:]) != self.input_size:
            raise ValueError(f"{path}: the graph's input is {dims[2]}x{dims[3]}, the entry says {self.input_size}")
        known = {self.input_name}
        taken: set[str] = set()
        self._steps_all: list[tuple[str, tuple[str, ...], str]] = []
        for index, node in enumerate(graph.node):
            where = f"{path}: node {node.name or index!r} ({node.op_type})"
            if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
                raise UnsupportedOnnxModel(
                    f"{path}: node {node.name or index!r} uses operator {node.domain + '.' if node.domain else ''}"
                    f"{node.op_type}, which amva's ONNX converter does not support (supported: "
                    f"{', '.join(SUPPORTED_OPS)})"
                )
            missing = [i for i in node.input if i and i not in const and i not in known]
            if missing:
                raise UnsupportedOnnxModel(f"{where}: inputs {missing} are not produced before it (not topological)")
            extra = [o for o in node.output[1:] if o and any(o in n.input for n in graph.node)]
            if extra or (graph.output and any(o.name in node.output[1:] for o in graph.output)):
                raise UnsupportedOnnxModel(f"{where}: only its first output may be used, {extra} are")
            attrs = _attrs(node)
            if node.op_type == "Constant":
                const[node.output[0]] = _constant(attrs, where)
                continue
            if all(not i or i in const for i in node.input):
                const[node.output[0]] = self._fold(node, attrs, const, where)
                continue
            if node.op_type == "DequantizeLinear":
                raise UnsupportedOnnxModel(f"{where}: activation quantisation is not supported, only weights")
            name = _module_name(node, index, taken)
            self.ops[name] = self._make(node, attrs, const, where)
            dynamic = tuple(i for i in node.input if i and i not in const)
            self._steps_all.append((name, dynamic, node.output[0]))
            known.add(node.output[0])
            self.module_of[node.output[0]] = self.module_of[node.name or node.output[0]] = f"ops.{name}"
        if self.output_name not in known:
            raise UnsupportedOnnxModel(f"{path}: output {self.output_name!r} is constant or never produced")
        self._forward_plan = self._plan({self.input_name}, self.output_name)

    @staticmethod
    def _node_inputs(node: Any, const: dict[str, Tensor]) -> list[Tensor | None]:
        return [const[i] if i else None for i in node.input]

    def _fold(self, node: Any, attrs: dict[str, Any], const: dict[str, Tensor], where: str) -> Tensor:
        """Evaluate a node whose inputs are all constant, once."""
        args = self._node_inputs(node, const)
        if node.op_type == "DequantizeLinear":
            q, scale, *zp = (a.numpy() for a in args if a is not None)
            return torch.from_numpy(
                dequantize_linear(q, scale, zp[0] if zp else 0, attrs.get("axis", 1), attrs.get("block_size", 0))
            )
        module = self._make(node, attrs, const, where, fold=True)
        with torch.no_grad():
            return module(*[a for a in args if a is not None])

    def _make(self, node: Any, attrs: dict[str, Any], const: dict[str, Tensor], where: str, fold: bool = False) -> Node:
        """The module of one node; constant inputs become its parameters/buffers."""
        op, name = node.op_type, node.name
        args = [const.get(i) if i else None for i in node.input]

        def need_const(i: int, what: str) -> Tensor:
            if len(args) <= i or args[i] is None:
                raise UnsupportedOnnxModel(f"{where}: its {what} (input {i}) must be a constant")
            return args[i].float()

        if not fold and op == "Conv":
            bias = need_const(2, "bias") if len(args) > 2 and node.input[2] else None
            return ConvNode(name, need_const(1, "weight"), bias, attrs, where)
        if not fold and op == "BatchNormalization":
            if attrs.get("training_mode", 0):
                raise UnsupportedOnnxModel(f"{where}: training-mode BatchNormalization")
            scale, bias, mean, var = (need_const(i, what) for i, what in enumerate(("scale", "B", "mean", "var"), 1))
            return BatchNormNode(name, scale, bias, mean, var, float(attrs.get("epsilon", 1e-5)))
        if not fold and op == "PRelu":
            return PReluNode(name, need_const(1, "slope"))
        if not fold and op == "Gemm" and args[0] is None and args[1] is not None:
            bias = need_const(2, "C") if len(args) > 2 and node.input[2] else None
            return GemmNode(name, need_const(1, "B"), bias, attrs)
        if not fold and op == "MatMul" and args[0] is None and args[1] is not None:
            return MatMulNode(name, need_const(1, "B"))
        if op in ("MaxPool", "AveragePool"):
            pool = _pool_fn(op, attrs, where)
            return Node(op, name, ["in"], pool)
        if op not in _FUNCTIONS:
            raise UnsupportedOnnxModel(f"{where}: {op} needs constant weights here")
        fn = _FUNCTIONS[op]
        slots = []
        cls = ReshapeNode if op in ("Reshape", "Flatten") else Node
        module = cls(op, name, slots, lambda *xs: fn(*xs, attrs))  # attrs last, as _FUNCTIONS expect
        for i, (arg, inp) in enumerate(zip(args, node.input, strict=True)):
            if not inp:
                slots.append("")
            elif arg is None or fold:
                slots.append("in")
            else:
                module.register_buffer(f"c{i}", arg)
                slots.append(f"c{i}")
        return module

    def _plan(self, feeds: set[str], output: str) -> list[_Step]:
        """The steps that compute ``output`` from ``feeds``, freeing tensors after their last use."""
        producers = {out: (name, ins) for name, ins, out in self._steps_all}
        needed: set[str] = set()
        stack = [output]
        while stack:
            t = stack.pop()
            if t in feeds or t in needed:
                continue
            if t not in producers:
                raise UnsupportedOnnxModel(f"{self.path}: {output!r} depends on {t!r}, which is not computed")
            needed.add(t)
            stack.extend(producers[t][1])
        order = [(n, ins, out) for n, ins, out in self._steps_all if out in needed]
        last_use: dict[str, int] = {}
        for k, (_, ins, _) in enumerate(order):
            for t in ins:
                last_use[t] = k
        return [
            _Step(n, ins, out, tuple(t for t in set(ins) if last_use[t] == k and t != output))
            for k, (n, ins, out) in enumerate(order)
        ]

    def _execute(
        self,
        plan: list[_Step],
        env: dict[str, Tensor],
        output: str,
        before: Callable[[_Step, dict[str, Tensor]], None] | None = None,
    ) -> Tensor:
        for step in plan:
            if before is not None:
                before(step, env)
            env[step.output] = self.ops[step.module](*(env[t] for t in step.inputs))
            for t in step.free:
                del env[t]
        return env[output]

    def fuse_conv_bn(self) -> OnnxFaceModel:
        """A copy with each BatchNormalization that alone consumes a Conv's output folded into
        that Conv (the BN node becomes an identity under the same name, so hooks by name still
        resolve); ``amva.models.fuse.fuse_conv_bn`` calls this, since module order in ``ops``
        says nothing about which node feeds which."""
        fused = copy.deepcopy(self)
        producer = {out: name for name, _, out in fused._steps_all}
        uses = Counter(t for _, ins, _ in fused._steps_all for t in ins)
        for name, ins, _ in fused._steps_all:
            bn, conv = fused.ops[name], fused.ops[producer.get(ins[0], name)] if ins else None
            if not (isinstance(bn, BatchNormNode) and isinstance(conv, ConvNode) and uses[ins[0]] == 1):
                continue
            ref = nn.BatchNorm2d(bn.weight.numel(), eps=bn.eps).eval()
            ref.load_state_dict({k: v for k, v in bn.state_dict().items() if k in ref.state_dict()}, strict=False)
            conv.conv = fuse_conv_bn_eval(conv.conv, ref).requires_grad_(False)
            fused.ops[name] = Node("Identity", bn.onnx_name, ["in"], lambda x: x)
        return fused

    # -- FaceModel ---------------------------------------------------------------------

    def normalize(self, x: Tensor) -> Tensor:
        """RGB [0, 255] -> the graph's input: channel order, then ``(x - mean) / std``."""
        check_input_size(x, self.input_size, f"ONNX model {self.path.name}")
        if self.color_order == "BGR":
            x = x.flip(1)
        return (x - self.input_mean) / self.input_std

    def forward(self, x: Tensor) -> Tensor:
        """The graph's first output, flattened to (N, D)."""
        out = self._execute(self._forward_plan, {self.input_name: self.normalize(x)}, self.output_name)
        return out.flatten(1)

    def pre_dropout(self, x: Tensor) -> Tensor:
        """The embedding layer's input flattened to (N, F): the features SER-FIQ drops out."""
        split = self._require_split()
        return self._execute(self._pre_plan, {self.input_name: self.normalize(x)}, split).flatten(1)

    def head(self, f: Tensor) -> Tensor:
        """From (N, F) ``pre_dropout`` features to the (N, D) embedding."""
        split = self._require_split()
        env = {split: f.reshape(len(f), *self.split_shape)}
        return self._execute(self._head_plan, env, self.output_name).flatten(1)

    def _require_split(self) -> str:
        if self.split is None:
            raise UnsupportedOnnxModel(
                f"{self.path}: no Conv/Gemm/MatMul whose input alone determines the embedding, so SER-FIQ "
                "cannot split this graph; use another FIQA method with this model"
            )
        return self.split

    def _trace(self, n: int, batch1: dict[str, tuple[int, ...]] | None = None) -> dict[str, tuple[int, ...]]:
        """Every tensor's shape on ``n`` zero images; a failure names its node.

        Given the shapes at batch 1, each Reshape/Flatten with a constant target shape
        learns on the way whether its input carries the batch (then it keeps it).
        """
        shapes: dict[str, tuple[int, ...]] = {}
        at: list[_Step] = []

        def before(step: _Step, env: dict[str, Tensor]) -> None:
            shapes.update((t, tuple(env[t].shape)) for t in step.inputs)
            node = self.ops[step.module]
            if batch1 is not None and isinstance(node, ReshapeNode):
                node.keep_batch = len(step.inputs) == 1 and _carries_batch(step.inputs[0], batch1, shapes, n)
            at[:] = [step]

        x = self.normalize(torch.zeros(n, 3, *self.input_size))
        try:
            with torch.no_grad():
                out = self._execute(self._forward_plan, {self.input_name: x}, self.output_name, before)
        except (RuntimeError, ValueError, IndexError) as err:
            node = self.ops[at[0].module]
            raise UnsupportedOnnxModel(
                f"{self.path}: node {node.onnx_name!r} ({node.op_type}) of the converted graph fails on a batch of "
                f"{n}: {err}"
            ) from err
        shapes[self.output_name] = tuple(out.shape)
        return shapes

    def _analyse(self, layer: str | None) -> None:
        """Trace shapes at batch 1 and 2 (which tensors carry the batch), then find the
        embedding layer's input (SER-FIQ's split) and the default CAM layer."""
        one = self._trace(1)
        two = self._trace(2, one)
        self.embedding_size = int(np.prod(one[self.output_name][1:]))
        self.split, self.split_shape = None, ()
        for step in reversed(self._forward_plan):
            data = step.inputs[0] if step.inputs else ""
            if not isinstance(self.ops[step.module], ConvNode | GemmNode | MatMulNode):
                continue
            if not _carries_batch(data, one, two, 2):
                continue
            try:
                self._head_plan = self._plan({data}, self.output_name)
            except UnsupportedOnnxModel:  # the rest also reads tensors from before this layer
                continue
            self._pre_plan = self._plan({self.input_name}, data)
            self.split, self.split_shape = data, one[data][1:]
            break
        if layer is not None:
            if layer in self.module_of:
                self.default_cam_layer = self.module_of[layer]
            elif layer in dict(self.named_modules()):
                self.default_cam_layer = layer
            else:
                raise ValueError(f"{self.path}: layer {layer!r} is neither a node, an output tensor nor a module")
            return
        passthrough = ("BatchNormalization", "Dropout", "Flatten", "Reshape", "Identity")
        for step in reversed(self._forward_plan):
            shape = two[step.output]
            spatial = len(shape) == 4 and shape[2] * shape[3] > 1 and _carries_batch(step.output, one, two, 2)
            if spatial and self.ops[step.module].op_type not in passthrough:
                self.default_cam_layer = f"ops.{step.module}"
                return
        raise ValueError(
            f"{self.path}: no node with a spatial (N, C, h, w) output on the path to the embedding; "
            "set 'layer' in the entry"
        )


def _carries_batch(tensor: str, batch1: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]], n: int) -> bool:
    """Whether ``tensor``'s leading dim is the batch: 1 image -> (1, ...), ``n`` images -> (n, same ...)."""
    one = batch1.get(tensor, ())
    return one[:1] == (1,) and shapes.get(tensor) == (n, *one[1:])


def _constant(attrs: dict[str, Any], where: str) -> Tensor:
    from onnx import numpy_helper

    if "value" in attrs:
        return torch.from_numpy(np.array(numpy_helper.to_array(attrs["value"])))
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32)):
        if key in attrs:
            return torch.from_numpy(np.array(attrs[key], dtype=dtype))
    for key in ("value_int", "value_ints"):
        if key in attrs:
            return torch.from_numpy(np.array(attrs[key], dtype=np.int64))
    raise UnsupportedOnnxModel(f"{where}: Constant with attributes {sorted(attrs)} is not supported")


def convert_onnx(
    path: Path | str,
    input_size: int | Sequence[int] = 112,
    color_order: str = "RGB",
    mean: Sequence[float] | float = 127.5,
    std: Sequence[float] | float = 127.5,
    layer: str | None = None,
) -> OnnxFaceModel:
    """Convert an ONNX FR model, checked against onnxruntime; eval mode, parameters frozen. Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} not found")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    model = OnnxFaceModel(path, size, color_order, mean, std, sha256_file(path)).eval().requires_grad_(False)
    model._analyse(layer)
    ensure_verified(model)
    return model


def load_onnx_model(spec: dict[str, Any]) -> OnnxFaceModel:
    """The model of a ``{kind: onnx, path, input_size, color_order, mean, std, layer}`` entry."""
    return convert_onnx(
        spec["path"],
        spec.get("input_size", 112),
        str(spec.get("color_order", "RGB")).upper(),
        spec.get("mean", 127.5),
        spec.get("std", 127.5),
        None if spec.get("layer") in (None, "auto") else spec["layer"],
    )

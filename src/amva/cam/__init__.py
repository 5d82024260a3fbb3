"""Activation maps from face embeddings: one module per CAM method, registered under its name.

A method is a :class:`BaseCAM` subclass that declares its record (``name``,
``default_target``, ``needs_gradients``, ``options``, ``default_batch_size``) and is
decorated ``@register``; a built-in one is imported below, one of your own is a module
named in ``$AMVA_PLUGINS``, imported when this package loads (README: Development).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from amva.cam.activation_mean import ActivationMean
from amva.cam.base import BaseCAM, CamResult
from amva.cam.eigencam import EigenCAM
from amva.cam.gradcam import GradCAM
from amva.cam.gradcampp import GradCAMPlusPlus
from amva.cam.layercam import LayerCAM
from amva.cam.registry import METHODS, get_method, load_plugins, register
from amva.cam.scorecam import ScoreCAM
from amva.cam.targets import get_target
from amva.models import batch_for
from amva.options import Option

__all__ = [
    "METHODS",
    "ActivationMean",
    "BaseCAM",
    "CamResult",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "LayerCAM",
    "Option",
    "ScoreCAM",
    "cam_from_config",
    "get_method",
    "images_per_call",
    "make_cam",
    "register",
]


def make_cam(model: nn.Module, method: str, target: str = "default", layer: str = "auto", **options: Any) -> BaseCAM:
    """The CAM ``method`` names (``target`` "default": the method's own); an error names the argument."""
    cls = get_method(method)
    name = cls.target_name(target)
    return cls(model, None if name is None else get_target(name), layer, **options)


def cam_from_config(model: nn.Module, spec: dict[str, Any]) -> BaseCAM:
    """The CAM of a ``cams:`` entry: its method, target, layer and the method's own options."""
    options = {name: spec[name] for name in get_method(spec["method"]).options if name in spec}
    return make_cam(model, spec["method"], spec.get("target", "default"), spec.get("layer", "auto"), **options)


def images_per_call(spec: dict[str, Any], device: torch.device) -> int:
    """A ``cams:`` entry's ``batch_size``, else its method's own for ``device`` (CPU: 4, Score-CAM 1; CUDA: 16x)."""
    return spec.get("batch_size") or batch_for(device, get_method(spec["method"]).default_batch_size)


load_plugins()

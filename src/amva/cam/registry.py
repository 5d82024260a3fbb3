"""The CAM methods a ``cams:`` entry can name: each class registers itself under its record's name.

Built-in methods register in their own modules (imported by :mod:`amva.cam`); a method of
your own does the same in any importable module named in ``$AMVA_PLUGINS``, which
:mod:`amva.cam` imports when it loads, so the workflow and every job see it.
"""

from __future__ import annotations

import importlib
import os
from typing import TypeVar

from amva.cam.base import BaseCAM
from amva.cam.targets import get_target

PLUGINS_VARIABLE = "AMVA_PLUGINS"  # comma-separated module names

METHODS: dict[str, type[BaseCAM]] = {}
CAM = TypeVar("CAM", bound=type[BaseCAM])


def register(cls: CAM) -> CAM:
    """Class decorator: ``cls`` becomes the method its ``name`` says; its record is checked here, once."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or not hasattr(cls, "default_target"):
        raise TypeError(f"{cls.__qualname__}: a CAM method declares a name and a default_target (None: no target)")
    if METHODS.get(name, cls) is not cls:
        raise ValueError(f"CAM method {name!r} is registered already, by {METHODS[name].__qualname__}")
    if cls.default_target is not None:
        get_target(cls.default_target)
    shadowed = set(cls.options) & (set(dir(cls)) | {"model", "target", "layer"})
    if shadowed:
        raise TypeError(f"{cls.__qualname__}: options {sorted(shadowed)} would shadow attributes of the CAM")
    METHODS[name] = cls
    return cls


def get_method(name: str) -> type[BaseCAM]:
    """The class of CAM method ``name``, with the registered names in the error."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown CAM method {name!r}; choose one of {sorted(METHODS)} or name its module in ${PLUGINS_VARIABLE}"
        ) from None


def load_plugins() -> None:
    """Import the modules named in ``$AMVA_PLUGINS``; each registers its methods on import."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"${PLUGINS_VARIABLE} names {module!r}, which cannot be imported: {err}") from err

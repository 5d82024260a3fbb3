"""FIQA methods behind one interface: ``method(model, images, ids, **params) -> raw scores``.

``images`` are aligned faces ``(N, 3, 112, 112)`` in [0, 255]; ``model`` is the FR model
for methods that need one and ``None`` otherwise. Every score is written oriented
"higher = better"; the raw value and the direction of each method are kept, so the flip
is explicit. Adding a method is one module and one entry in ``METHODS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from amva.models import FaceModel, to_tensor
from amva.quality import brisque, embedding_norm, faceqan, flip, grafiqs, ofiq, qualityface, serfiq
from amva.runlog import batches


@dataclass(frozen=True)
class Method:
    """A FIQA method: its function, its raw direction and whether it needs an FR model."""

    fn: Callable[..., np.ndarray]
    higher_is_better: bool
    needs_model: bool

    def options(self) -> set[str]:
        """Parameter names a config entry may set (besides the shared ones)."""
        return set(list(inspect.signature(self.fn).parameters)[3:])


METHODS: dict[str, Method] = {
    "serfiq": Method(serfiq.serfiq, True, True),
    "embedding_norm": Method(embedding_norm.embedding_norm, embedding_norm.HIGHER_IS_BETTER, True),
    "flip_consistency": Method(flip.flip_consistency, flip.HIGHER_IS_BETTER, True),
    "faceqan": Method(faceqan.faceqan, faceqan.HIGHER_IS_BETTER, True),
    "grafiqs": Method(grafiqs.grafiqs, grafiqs.HIGHER_IS_BETTER, True),
    "brisque": Method(brisque.brisque, brisque.HIGHER_IS_BETTER, False),
    "qualityface": Method(qualityface.qualityface, qualityface.HIGHER_IS_BETTER, False),
    **{name: Method(fn, ofiq.HIGHER_IS_BETTER, False) for name, fn in ofiq.METHODS.items()},
}
# config keys every computed FIQA entry may carry besides the method's own options
SHARED_KEYS = {"method", "model", "batch_size"}


def get_method(name: str) -> Method:
    """Look a FIQA method up by its config name, with the valid names in the error."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown FIQA method {name!r}; choose one of {sorted(METHODS)}") from None


def check_entry(name: str, spec: dict[str, Any]) -> None:
    """A computed FIQA config entry names a model iff it needs one, and only known options."""
    method = get_method(spec["method"])
    if method.needs_model and "model" not in spec:
        raise ValueError(f"config fiqa.{name}: method {spec['method']} needs an FR model (model: <a key of models>)")
    unknown = set(spec) - SHARED_KEYS - method.options()
    if unknown:
        raise ValueError(
            f"config fiqa.{name}: {', '.join(sorted(unknown))} is not an option of {spec['method']}; "
            f"options: {', '.join(sorted(method.options())) or 'none'}"
        )


def score(
    faces: xr.Dataset,
    method: str,
    model: FaceModel | None,
    device: torch.device,
    params: dict[str, Any],
    batch_size: int = 32,
) -> xr.Dataset:
    """Quality per image, oriented "higher = better", with the raw value kept."""
    m = get_method(method)
    ids = faces["image"].values.tolist()
    params = {k: v for k, v in params.items() if k in m.options()}
    raw = []
    for chunk in batches(np.arange(len(ids)), batch_size, method):
        x = to_tensor(faces["pixels"].values[chunk], device)
        raw.append(m.fn(model, x, [ids[i] for i in chunk], **params))
    values = np.concatenate(raw).astype(np.float64)
    ds = xr.Dataset(
        {"quality": ("image", values if m.higher_is_better else -values), "raw": ("image", values)},
        coords={"image": faces["image"].values},
        attrs={"method": method, "higher_is_better_raw": int(m.higher_is_better), "oriented": "higher = better"},
    )
    ds["quality"].attrs = {"description": f"{method} quality, higher = better"}
    ds["raw"].attrs = {"description": f"{method} score as the method defines it"}
    return ds

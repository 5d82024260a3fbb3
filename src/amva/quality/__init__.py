"""FIQA methods behind one interface: ``method(model, images, ids, **params) -> scores``.

Every score is oriented "higher = better" when written; ``HIGHER_IS_BETTER`` records the
raw direction of each method so the flip is explicit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr

from amva.models import FaceModel, to_tensor
from amva.quality.serfiq import serfiq
from amva.runlog import batches

METHODS: dict[str, Callable[..., np.ndarray]] = {"serfiq": serfiq}
HIGHER_IS_BETTER: dict[str, bool] = {"serfiq": True}


def get_method(name: str) -> Callable[..., np.ndarray]:
    """Look a FIQA method up by its config name, with the valid names in the error."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown FIQA method {name!r}; choose one of {sorted(METHODS)}") from None


def score(
    faces: xr.Dataset,
    method: str,
    model: FaceModel | None,
    device: torch.device,
    params: dict[str, Any],
    batch_size: int = 32,
) -> xr.Dataset:
    """Quality per image, oriented "higher = better", with the raw value kept."""
    fn = get_method(method)
    ids = faces["image"].values.tolist()
    raw = []
    for chunk in batches(np.arange(len(ids)), batch_size, method):
        x = to_tensor(faces["pixels"].values[chunk], device)
        raw.append(fn(model, x, [ids[i] for i in chunk], **params))
    values = np.concatenate(raw).astype(np.float64)
    higher = HIGHER_IS_BETTER[method]
    ds = xr.Dataset(
        {"quality": ("image", values if higher else -values), "raw": ("image", values)},
        coords={"image": faces["image"].values},
        attrs={"method": method, "higher_is_better_raw": int(higher), "oriented": "higher = better"},
    )
    ds["quality"].attrs = {"description": f"{method} quality, higher = better"}
    ds["raw"].attrs = {"description": f"{method} score as the method defines it"}
    return ds

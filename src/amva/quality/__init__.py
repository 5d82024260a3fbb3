"""FIQA methods behind one interface: ``method(model, images, ids, **options) -> raw scores``.

``images`` are aligned faces ``(N, 3, 112, 112)`` in [0, 255]; ``model`` is the FR model
for methods that need one and ``None`` otherwise. Every score is written oriented
"higher = better"; the raw value and the direction of each method are kept, so the flip
is explicit. Each method is declared once, as a :class:`~amva.quality.method.Method`
record next to its code; adding one is a module and its line in ``REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from amva.models import FaceModel, to_tensor
from amva.quality import brisque, embedding_norm, faceqan, flip, grafiqs, ofiq, qualityface, scores_file, serfiq
from amva.quality.method import Method, quality_dataset
from amva.runlog import batches

REGISTRY: dict[str, Method] = {
    record.name: record
    for record in (
        serfiq.RECORD,
        embedding_norm.RECORD,
        flip.RECORD,
        faceqan.RECORD,
        grafiqs.RECORD,
        brisque.RECORD,
        qualityface.RECORD,
        *ofiq.RECORDS,
        scores_file.RECORD,
    )
}
"""Every FIQA method by name, computed and imported."""
METHODS: dict[str, Method] = {name: record for name, record in REGISTRY.items() if record.fn is not None}
"""The methods :func:`score` computes."""


def get_method(name: str) -> Method:
    """Look a FIQA method up by name, with the valid names in the error."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown FIQA method {name!r}; choose one of {sorted(REGISTRY)}") from None


def score(
    faces: xr.Dataset,
    method: str,
    model: FaceModel | None,
    device: torch.device,
    options: Mapping[str, Any] | None = None,
    batch_size: int = 32,
) -> xr.Dataset:
    """Quality per image, oriented "higher = better", with the raw value kept.

    ``options`` are the method's own (its record's defaults fill the rest).
    """
    m = get_method(method)
    if m.fn is None:
        raise ValueError(f"{method} is not computed but imported from a score file (scores_file.import_scores)")
    if m.needs_model and model is None:
        raise ValueError(f"{method} needs an FR model: model is None")
    kwargs = m.arguments(options or {})
    ids = faces["image"].values.tolist()
    raw = []
    for chunk in batches(np.arange(len(ids)), batch_size, method):
        x = to_tensor(faces["pixels"].values[chunk], device)
        raw.append(m.fn(model, x, [ids[i] for i in chunk], **kwargs))
    return quality_dataset(faces["image"].values, np.concatenate(raw), method, m.higher_is_better)

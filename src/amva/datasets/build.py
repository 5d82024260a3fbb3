"""Dataset config entry → aligned faces, pairs and rejections, whatever the format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from amva.datasets.faces import all_pairs, faces_dataset, rejected_table

# labels every format provides, and the extra ones the demo ladder knows
_COMMON = ("identity", "detection_score")
_DEMO = ("source", "degradation", "severity")


def build_dataset(
    spec: dict[str, Any], sources: str | Path, seed: int = 0
) -> tuple[xr.Dataset, xr.Dataset, pd.DataFrame]:
    """Read and align a dataset as its ``format`` says; ``sources`` is its input path."""
    fmt = spec["format"]
    if fmt == "demo":
        from amva.datasets.demo import build_demo

        images, rejected = build_demo(
            Path(sources), severities=tuple(spec["severities"]), degradations=spec.get("degradations"), seed=seed
        )
        names = _COMMON + _DEMO
    elif fmt == "folder":
        from amva.datasets.folder import read_folder

        images, rejected = read_folder(sources, aligned=bool(spec.get("aligned", False)))
        names = _COMMON
    else:
        raise ValueError(f"datasets format {fmt!r} is not supported; use 'demo' or 'folder'")
    if not images:
        raise ValueError(f"{sources}: no usable face in this dataset; see rejected.csv reasons: {rejected[:3]}")
    labels = {name: np.array([getattr(im, name) for im in images]) for name in names}
    faces = faces_dataset(
        [im.id for im in images],
        np.stack([im.face for im in images]),
        np.stack([im.landmarks for im in images]),
        labels,
    )
    return faces, all_pairs(faces), rejected_table(rejected)

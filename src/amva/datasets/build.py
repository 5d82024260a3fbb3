"""Dataset config entry → aligned faces, pairs and rejections, whatever the format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from amva.datasets.faces import all_pairs, faces_dataset, rejected_table


def build_dataset(spec: dict[str, Any], sources: str | Path, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset, pd.DataFrame]:
    """Read and align a dataset as its ``format`` says."""
    if spec["format"] != "demo":
        raise ValueError(f"datasets format {spec['format']!r} is not supported; use 'demo'")
    from amva.datasets.demo import build_demo

    images, rejected = build_demo(
        Path(sources), severities=tuple(spec["severities"]), degradations=spec.get("degradations"), seed=seed
    )
    if not images:
        raise ValueError(f"{sources}: no face was found in any demo photo; see rejected.csv")
    faces = faces_dataset(
        [im.id for im in images],
        np.stack([im.face for im in images]),
        np.stack([im.landmarks for im in images]),
        {
            "identity": [im.identity for im in images],
            "source": [im.source for im in images],
            "degradation": [im.degradation for im in images],
            "severity": np.array([im.severity for im in images], dtype=np.int64),
            "detection_score": np.array([im.detection_score for im in images], dtype=np.float32),
        },
    )
    return faces, all_pairs(faces), rejected_table(rejected)

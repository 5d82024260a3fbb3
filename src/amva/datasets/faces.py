"""The labelled containers every dataset reader produces: faces, pairs, rejections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import xarray as xr

REJECTED_COLUMNS = ["id", "path", "reason"]


def faces_dataset(
    ids: Sequence[str],
    pixels: np.ndarray,
    landmarks: np.ndarray,
    labels: Mapping[str, Sequence[object]],
) -> xr.Dataset:
    """Aligned crops ``(image, y, x, channel)`` RGB uint8 with per-image label coordinates."""
    if len(set(ids)) != len(ids):
        raise ValueError("image ids must be unique")
    _n, h, w, _ = pixels.shape
    ds = xr.Dataset(
        {
            "pixels": (("image", "y", "x", "channel"), pixels.astype(np.uint8)),
            "landmarks": (("image", "point", "coord"), landmarks.astype(np.float32)),
        },
        coords={
            "image": np.asarray(ids, dtype=str),
            "y": np.arange(h),
            "x": np.arange(w),
            "channel": ["R", "G", "B"],
            "point": ["right_eye", "left_eye", "nose", "right_mouth", "left_mouth"],
            "coord": ["x", "y"],
            **{name: ("image", np.asarray(values)) for name, values in labels.items()},
        },
    )
    ds["pixels"].attrs = {"description": "aligned face, RGB", "units": "8-bit intensity"}
    ds["landmarks"].attrs = {"description": "5 landmarks in the aligned frame", "units": "pixel"}
    return ds


def all_pairs(faces: xr.Dataset) -> xr.Dataset:
    """Every unordered pair of images, labelled genuine when the identities match."""
    ids = faces["image"].values.tolist()
    identity = dict(zip(ids, faces["identity"].values.tolist(), strict=True))
    a, b = (np.array(x, dtype=str) for x in zip(*combinations(ids, 2), strict=True))
    genuine = np.array([identity[x] == identity[y] for x, y in zip(a, b, strict=True)])
    ds = xr.Dataset(
        {"a": ("pair", a), "b": ("pair", b), "genuine": ("pair", genuine)},
        coords={"pair": np.arange(a.size)},
    )
    ds.attrs.update(genuine_pairs=int(genuine.sum()), impostor_pairs=int((~genuine).sum()))
    return ds


def rejected_table(rows: Sequence[object]) -> pd.DataFrame:
    """Rows with ``id``, ``path``, ``reason`` attributes as the rejected.csv table."""
    return pd.DataFrame([[r.id, r.path, r.reason] for r in rows], columns=REJECTED_COLUMNS)

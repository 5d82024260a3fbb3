"""The labelled containers every dataset reader produces: faces, pairs, rejections."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

REJECTED_COLUMNS = ["id", "path", "reason"]

MAX_IMPOSTOR_PAIRS = 1_000_000
"""Default impostor pairs kept: FMR 1e-4 is then 100 impostor scores above the threshold."""
MAX_GENUINE_PAIRS = 10_000_000
"""Genuine pairs are never sampled; above this many (one identity of ~4,500 images already has
10 million) a dataset is refused rather than exhausting memory here and in the evaluation."""
SAMPLING = (
    "every genuine pair; impostor pairs uniformly without replacement (all of them when at most "
    "max_impostor_pairs exist), enumerated in (identity, id) order and drawn with the seed, so the kept "
    "set does not depend on the order the images were listed in"
)
_STREAM = zlib.crc32(b"impostor_pairs")  # the pair draws' own random stream under the dataset seed


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
            "pixels": (("image", "y", "x", "channel"), pixels.astype(np.uint8, copy=False)),
            "landmarks": (("image", "point", "coord"), landmarks.astype(np.float32, copy=False)),
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


def identity_pairs(
    ids: Sequence[str],
    identities: Sequence[str],
    max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS,
    seed: int = 0,
    max_genuine_pairs: int = MAX_GENUINE_PAIRS,
) -> xr.Dataset:
    """Every genuine pair and up to ``max_impostor_pairs`` impostor pairs of the images ``ids``.

    Never builds all n(n-1)/2 pairs: the images are put in (identity, id) order, where image
    ``p``'s genuine partners are the rest of its identity's block and its impostor partners
    every image after that block, so pair number ``k`` of either kind is found from
    cumulative counts. Impostor numbers are drawn without replacement (:func:`_distinct`).
    Memory is O(pairs kept): two int64 per pair while drawing, then ``a``/``b`` as object
    arrays sharing the id strings. Pairs come in image order (``a`` listed before ``b``),
    so with every pair kept they are exactly ``itertools.combinations(ids, 2)``.
    """
    ids = np.asarray(ids, dtype=object)
    identities = np.asarray(identities, dtype=str)
    n = ids.size
    order = np.lexsort((ids.astype(str), identities))  # canonical position → listed position
    _, start, size = np.unique(identities[order], return_index=True, return_counts=True)
    end = np.repeat(start + size, size)  # per canonical position: the end of its identity's block
    position = np.arange(n)
    genuine_count, impostor_count = end - position - 1, n - end
    n_genuine, available = int(genuine_count.sum()), int(impostor_count.sum())
    if n_genuine > max_genuine_pairs:
        big = int(size.argmax())
        raise ValueError(
            f"{n_genuine:,} genuine pairs exceed {max_genuine_pairs:,}: identity "
            f"{str(identities[order[start[big]]])!r} alone has {size[big]:,} images; check the identity labels "
            "(a folder of unlabelled images?), read fewer images (limit) or list the pairs (format pair_list)"
        )
    kept = min(available, max_impostor_pairs)
    if kept < available:
        drawn = _distinct(np.random.default_rng([seed, _STREAM]), available, kept)
    else:
        drawn = np.arange(available)
    code = np.empty(n, np.int64)
    code[order] = np.repeat(np.arange(size.size), size)  # identity number per listed position
    key = np.concatenate(
        [
            _pair_keys(np.arange(n_genuine), genuine_count, position + 1, order),
            _pair_keys(drawn, impostor_count, end, order),
        ]
    )
    key.sort()
    lo, hi = np.divmod(key, max(n, 1))
    del key
    genuine = code[lo] == code[hi]
    a, b = ids[lo], ids[hi]
    del lo, hi
    ds = pair_table(a, b, genuine)
    ds.attrs.update(
        pairs="identities",
        genuine_pairs=n_genuine,
        impostor_pairs=kept,
        impostor_pairs_available=available,
        max_impostor_pairs=int(max_impostor_pairs),
        seed=int(seed),
        sampling=SAMPLING,
    )
    return ds


ID_ENCODING = {"dtype": "S1", "zlib": True, "complevel": 4}
"""Image ids of a pair list on disk: fixed-width characters with zlib, which xarray reads back as
strings. Variable-length strings cannot be compressed: a million pairs took 155 MB, now 2-3 MB."""


def pair_table(a: np.ndarray, b: np.ndarray, genuine: np.ndarray) -> xr.Dataset:
    """pairs.nc's variables: the two images' ids and whether they are the same identity, over ``pair``."""
    ds = xr.Dataset({"a": ("pair", a), "b": ("pair", b), "genuine": ("pair", genuine)})
    for name in ("a", "b"):
        ds[name].encoding = dict(ID_ENCODING)
    ds["genuine"].encoding = {"zlib": True}
    return ds


def _pair_keys(k: np.ndarray, counts: np.ndarray, first: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Pairs number ``k`` of an enumeration where canonical image ``p`` pairs with the ``counts[p]``
    images from ``first[p]`` on, as ``lo * n + hi`` of their listed positions (``lo < hi``).
    In place where it can: a few int64 per pair at a time."""
    ends = np.cumsum(counts)
    p = np.searchsorted(ends, k, side="right")
    q = k - ends[p]
    q += counts[p]
    q += first[p]
    a, b = order[p], order[q]
    del p, q
    lo = np.minimum(a, b)
    np.maximum(a, b, out=b)
    lo *= order.size
    lo += b
    return lo


def _distinct(rng: np.random.Generator, population: int, size: int) -> np.ndarray:
    """``size`` distinct integers below ``population``, sorted, every subset equally likely, in O(size) memory.

    Each round draws as many independent uniform values as are still missing, so the result is
    exactly the first ``size`` distinct values of one stream of draws: a uniform subset (the
    draws are exchangeable). Above half the population its complement is drawn instead, so
    rounds stay few and memory within twice ``size``. (``Generator.choice`` would permute the
    whole population once ``size`` exceeds 2% of it.)
    """
    if 2 * size > population:
        keep = np.ones(population, dtype=bool)
        keep[_distinct(rng, population, population - size)] = False
        return np.flatnonzero(keep)
    drawn = np.empty(0, dtype=np.int64)
    while drawn.size < size:
        drawn = np.concatenate([drawn, rng.integers(0, population, size=size - drawn.size)])
        drawn.sort()  # numpy's unique is ~100x slower than a sort here
        drawn = drawn[np.r_[True, drawn[1:] != drawn[:-1]]]
    return drawn


def rejected_table(rows: Sequence[object]) -> pd.DataFrame:
    """Rows with ``id``, ``path``, ``reason`` attributes as the rejected.csv table."""
    return pd.DataFrame([[r.id, r.path, r.reason] for r in rows], columns=REJECTED_COLUMNS)

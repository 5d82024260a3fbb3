"""Thinning a curve for drawing: a figure's data must not grow with the number of images.

An EDC has one point per genuine pair, 7,000 for LFW's pair list and millions for a folder of
faces, while the figure is a few hundred pixels wide. Per bucket of ``1 / BUCKETS`` of the x
range, the first, last, lowest and highest point are drawn (the M4 rule of Jugel et al., VLDB
2014): the drawn line keeps every step and extreme a pixel column can show. The end points and
the points at given x values (the pAUC limits) are always kept. Result files keep every point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BUCKETS", "thin"]

BUCKETS = 200
"""Buckets along x: at most ``4 * BUCKETS`` points, plus the kept ones, per curve."""


def thin(x: np.ndarray, y: np.ndarray, keep: Sequence[float] = (), buckets: int = BUCKETS) -> np.ndarray:
    """Sorted indices of the points of the curve ``(x, y)`` (x ascending) to draw.

    A curve of at most ``4 * buckets`` points is kept whole. NaN values of ``y`` take no part
    in a bucket's lowest and highest point."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    if n <= 4 * buckets:
        return np.arange(n)
    span = x[-1] - x[0]
    bucket = (
        np.zeros(n, dtype=np.int64)
        if span <= 0
        else np.minimum(((x - x[0]) / span * buckets).astype(np.int64), buckets - 1)
    )
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], n] - 1
    chosen = [starts, ends, [0, n - 1]]
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        part = y[lo : hi + 1]
        if np.isfinite(part).any():
            chosen.append([lo + int(np.nanargmin(part)), lo + int(np.nanargmax(part))])
    at = np.searchsorted(x, np.asarray(keep, dtype=np.float64), side="right") - 1
    chosen.append(at[(at >= 0) & (at < n)])
    return np.unique(np.concatenate([np.asarray(c, dtype=np.int64) for c in chosen]))

"""Resampling and filtering of uint8 images in integer arithmetic: the same bytes on every CPU.

OpenCV and numpy choose their kernels by processor (SSE, AVX2 with FMA, AVX-512, NEON). Their
float results differ in the last bit from one kernel to another, and a uint8 pixel whose value
sits on a rounding boundary then flips: the demo ladder was not byte-identical across hosts.
Here every filter is a table of integer weights that sum to ``ONE``; sums are taken in int64,
which is exact in any order, and rounded once at the end. Weights and sampling positions are
computed in float64 by single IEEE operations (no reductions, no fused multiply-add) before
they are quantised, so their integer values do not depend on the processor either.

A filter is a :class:`Taps` per axis: for every output index, ``K`` source indices and weights.
Separable operations (Gaussian blur, area and bilinear resizing) apply one per axis; the affine
warp and 2-D kernels (motion blur) sample their taps directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BITS",
    "ONE",
    "Taps",
    "area_taps",
    "convolve",
    "gaussian_taps",
    "linear_taps",
    "quantise",
    "reflect",
    "resample",
    "warp_affine",
]

BITS = 14
"""Fractional bits of every weight and sampling position."""
ONE = 1 << BITS


@dataclass(frozen=True)
class Taps:
    """A 1-D filter: output ``i`` is ``sum_k weight[i, k] * source[index[i, k]] / ONE``."""

    index: np.ndarray  # (n_out, K) int64, inside the source
    weight: np.ndarray  # (n_out, K) int64, each row sums to ONE

    def __getitem__(self, rows: slice) -> Taps:
        return Taps(self.index[rows], self.weight[rows])


def quantise(weights: np.ndarray) -> np.ndarray:
    """Non-negative float weights, rows summing to 1, as integers whose rows sum to ``ONE`` exactly.

    Each weight is floored on the ``1 / ONE`` grid; the units left over go to the largest
    remainders (ties to the lower index), so a constant image stays constant."""
    scaled = np.asarray(weights, dtype=np.float64) * ONE
    base = np.floor(scaled).astype(np.int64)
    missing = ONE - base.sum(axis=-1)
    order = np.argsort(-(scaled - base), axis=-1, kind="stable")
    ranks = np.argsort(order, axis=-1, kind="stable")
    return base + (ranks < missing[..., None])


def reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Indices outside ``0 .. n-1`` mirrored with the edge pixel repeated (OpenCV's BORDER_REFLECT)."""
    period = np.mod(index, 2 * n)
    return np.where(period < n, period, 2 * n - 1 - period)


def gaussian_taps(n: int, sigma: float) -> Taps:
    """A Gaussian of ``sigma`` pixels over ``4 sigma`` each side, mirrored at the borders."""
    radius = max(1, math.ceil(4.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.array([math.exp(-0.5 * (o / sigma) * (o / sigma)) for o in offsets.tolist()])
    weights = quantise(kernel / math.fsum(kernel.tolist()))
    index = reflect(np.arange(n)[:, None] + offsets, n)
    return Taps(index, np.broadcast_to(weights, index.shape))


def area_taps(n_in: int, n_out: int) -> Taps:
    """Box averaging from ``n_in`` to ``n_out <= n_in`` samples (OpenCV's INTER_AREA when shrinking):
    output ``j`` averages the source interval ``[j s, (j + 1) s)``, ``s = n_in / n_out``, by overlap."""
    if not 0 < n_out <= n_in:
        raise ValueError(f"area resampling shrinks: cannot go from {n_in} to {n_out} samples")
    width = math.ceil(n_in / n_out) + 1
    start = (np.arange(n_out) * n_in) // n_out  # exact: integers
    index = np.minimum(start[:, None] + np.arange(width), n_in - 1)
    # overlap of source pixel [i, i + 1) with [j n_in / n_out, (j + 1) n_in / n_out), in units of 1 / n_out
    lo = np.arange(n_out)[:, None] * n_in
    cell = (start[:, None] + np.arange(width)) * n_out
    overlap = np.clip(np.minimum(cell + n_out, lo + n_in) - np.maximum(cell, lo), 0, None)
    return Taps(index, quantise(overlap / n_in))


def linear_taps(n_in: int, n_out: int) -> Taps:
    """Bilinear resampling with pixel centres aligned (``align_corners=False``), the edge repeated."""
    position = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    position = np.clip(position, 0.0, n_in - 1.0)
    fixed = np.floor(position * ONE + 0.5).astype(np.int64)
    left, frac = fixed >> BITS, fixed & (ONE - 1)
    index = np.stack([left, np.minimum(left + 1, n_in - 1)], axis=1)
    return Taps(index, np.stack([ONE - frac, frac], axis=1))


def _round(acc: np.ndarray, shift: int) -> np.ndarray:
    return np.clip((acc + (1 << (shift - 1))) >> shift, 0, 255).astype(np.uint8)


def resample(image: np.ndarray, rows: Taps, cols: Taps) -> np.ndarray:
    """``rows`` along y, then ``cols`` along x, of an (H, W, C) uint8 image; one rounding."""
    x = np.einsum("ikwc,ik->iwc", image[rows.index].astype(np.int64), rows.weight)  # only the rows used
    x = np.einsum("ijkc,jk->ijc", x[:, cols.index], cols.weight)
    return _round(x, 2 * BITS)


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate an (H, W, C) uint8 image with a (k, k) integer kernel summing to ``ONE`` (k odd),
    mirrored at the borders (OpenCV's ``filter2D`` with BORDER_REFLECT)."""
    h, w = image.shape[:2]
    r = kernel.shape[0] // 2
    acc = np.zeros(image.shape, dtype=np.int64)
    ys, xs = np.arange(h), np.arange(w)
    for dy, dx in zip(*np.nonzero(kernel), strict=True):
        rows, cols = reflect(ys + int(dy) - r, h), reflect(xs + int(dx) - r, w)
        acc += int(kernel[dy, dx]) * image[np.ix_(rows, cols)].astype(np.int64)
    return _round(acc, BITS)


def _inverse(m: np.ndarray) -> tuple[float, ...]:
    """The (2, 3) affine map's inverse as six Python floats (one IEEE operation at a time)."""
    a, b, c, d, e, f = (float(v) for v in np.asarray(m, dtype=np.float64).ravel())
    det = a * e - b * d
    if det == 0.0:
        raise ValueError("the affine map is singular")
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return ia, ib, -(ia * c + ib * f), id_, ie, -(id_ * c + ie * f)


def warp_affine(image: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear warp of an (H, W, C) uint8 image by the source -> output map ``m`` (2, 3) to
    ``size`` = (width, height), black outside the source (OpenCV's ``warpAffine`` with
    INTER_LINEAR and a constant 0 border). Positions are quantised to ``1 / ONE`` pixel."""
    ia, ib, ic, id_, ie, if_ = _inverse(m)
    u = np.arange(size[0], dtype=np.float64)[None, :]
    v = np.arange(size[1], dtype=np.float64)[:, None]
    x = np.floor((ia * u + ib * v + ic) * ONE + 0.5).astype(np.int64)
    y = np.floor((id_ * u + ie * v + if_) * ONE + 0.5).astype(np.int64)
    x0, fx, y0, fy = x >> BITS, x & (ONE - 1), y >> BITS, y & (ONE - 1)
    h, w = image.shape[:2]
    acc = np.zeros((size[1], size[0], image.shape[2]), dtype=np.int64)
    for dy, wy in ((0, ONE - fy), (1, fy)):
        for dx, wx in ((0, ONE - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            pixel = image[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].astype(np.int64)
            acc += (wy * wx * inside)[..., None] * pixel
    return _round(acc, 2 * BITS)

"""How alike two activation maps are: Spearman rank correlation and SSIM, per image.

The sanity check compares every trained map with the map of the same image under a randomised
model. Maps are ReLU'd and min-max scaled, so |A| = A and the rank correlation of |A| that
Adebayo et al. also report is the same number here. A map that is constant over the image
has no rank order: its correlation is NaN, and the caller records that it was constant.
"""

from __future__ import annotations

import numpy as np

SSIM_WINDOW = 7  # scikit-image's default: a uniform 7x7 window
SSIM_K1, SSIM_K2 = 0.01, 0.03


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties sharing their average rank (as Spearman's rho needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each pair of maps ``(N, ...)``; NaN where either map is constant."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        ra, rb = average_ranks(a[i]), average_ranks(b[i])
        ra, rb = ra - ra.mean(), rb - rb.mean()
        norm = np.sqrt((ra * ra).sum() * (rb * rb).sum())
        if norm > 0:
            out[i] = float((ra * rb).sum() / norm)
    return out


def _window_means(x: np.ndarray, size: int) -> np.ndarray:
    """Means of every ``size`` x ``size`` window lying wholly inside ``(N, H, W)`` (summed-area table)."""
    s = np.zeros((x.shape[0], x.shape[1] + 1, x.shape[2] + 1))
    s[:, 1:, 1:] = x.cumsum(axis=1).cumsum(axis=2)
    total = s[:, size:, size:] - s[:, :-size, size:] - s[:, size:, :-size] + s[:, :-size, :-size]
    return total / (size * size)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Mean SSIM (Wang et al. 2004) of each pair of 2-D maps ``(N, H, W)``.

    Matches scikit-image's ``structural_similarity(a, b, data_range=...)`` defaults: a uniform
    7x7 window, sample covariances (n / (n - 1)), K1 = 0.01, K2 = 0.03, and the mean over the
    windows that lie wholly inside the image (scikit-image crops the 3-pixel border).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3 or min(a.shape[1:]) < SSIM_WINDOW:
        raise ValueError(f"ssim takes two (N, H, W) stacks with H, W >= {SSIM_WINDOW}, got {a.shape} and {b.shape}")
    n = SSIM_WINDOW * SSIM_WINDOW
    ua, ub = _window_means(a, SSIM_WINDOW), _window_means(b, SSIM_WINDOW)
    cov = n / (n - 1)
    va = cov * (_window_means(a * a, SSIM_WINDOW) - ua * ua)
    vb = cov * (_window_means(b * b, SSIM_WINDOW) - ub * ub)
    vab = cov * (_window_means(a * b, SSIM_WINDOW) - ua * ub)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
    return s.reshape(s.shape[0], -1).mean(axis=1)

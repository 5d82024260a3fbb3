"""A plain 1-D Gaussian kernel density estimate, for the distribution of AM-V pixel values."""

from __future__ import annotations

import math

import numpy as np


def scott_bandwidth(values: np.ndarray) -> float:
    """Scott's rule for a 1-D Gaussian KDE: std (ddof=1) x n^(-1/5), as scipy's ``gaussian_kde``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(values.std(ddof=1) * values.size ** (-1 / 5))


def gaussian_kde(values: np.ndarray, grid: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    """Plain Gaussian KDE of ``values`` on ``grid`` (Scott's bandwidth unless given).

    No boundary correction: for non-negative values some mass lies below 0, off a grid
    that starts at 0. Returns NaN everywhere when the bandwidth is 0 (constant values).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    grid = np.asarray(grid, dtype=np.float64)
    h = scott_bandwidth(values) if bandwidth is None else float(bandwidth)
    if not h > 0:
        return np.full(grid.shape, np.nan)
    out = np.empty(grid.shape)
    step = max(1, (1 << 22) // max(values.size, 1))  # keep the (grid, values) block small
    for s in range(0, grid.size, step):
        z = (grid[s : s + step, None] - values[None, :]) / h
        out[s : s + step] = np.exp(-0.5 * z * z).sum(axis=1)
    return out / (values.size * h * np.sqrt(2 * np.pi))


def kde_mass(values: np.ndarray, lo: float, hi: float, h: float) -> float:
    """Exact share of the Gaussian KDE's mass in [lo, hi]."""
    if not h > 0:
        return float("nan")
    erf = np.vectorize(math.erf, otypes=[np.float64])
    scale = h * np.sqrt(2.0)
    return float(np.mean(0.5 * (erf((hi - values) / scale) - erf((lo - values) / scale))))

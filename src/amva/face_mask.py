"""The central-face region in the fixed frame of an alignment template."""

from __future__ import annotations

import numpy as np
import xarray as xr

from amva.datasets.align import TEMPLATE_SIZES, template_points


def face_mask(size: int = 112, margin: float = 0.5, template: str = "arcface112") -> xr.DataArray:
    """Central-face ellipse in the frame of an alignment template (the model's crop).

    The ellipse's centre is the template's centroid of eyes and mouth; its semi-axes are
    half the eye-to-eye and eye-to-mouth spans of the template, grown by ``margin``
    (a fraction). Scaled to ``size`` if maps are not as wide as the template's crop.
    """
    pts = template_points(template) * (size / TEMPLATE_SIZES[template])
    eyes, mouth = pts[:2], pts[3:]
    centre = np.concatenate([eyes, mouth]).mean(axis=0)
    half_w = (eyes[1, 0] - eyes[0, 0]) / 2 * (1 + margin)
    half_h = (mouth[:, 1].mean() - eyes[:, 1].mean()) / 2 * (1 + margin)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    inside = ((xx - centre[0]) / half_w) ** 2 + ((yy - centre[1]) / half_h) ** 2 <= 1.0
    return xr.DataArray(
        inside,
        dims=("y", "x"),
        coords={"y": np.arange(size), "x": np.arange(size)},
        name="face_mask",
        attrs={"description": "True inside the central-face ellipse", "margin": margin, "template": template},
    )


def region_weights(inside: np.ndarray) -> np.ndarray:
    """``(pixels, 2)`` weights whose product with a flat map gives its inside / outside means."""
    flat = inside.ravel()
    if flat.all() or not flat.any():
        raise ValueError("the face mask must have pixels both inside and outside")
    return np.stack([flat / flat.sum(), ~flat / (~flat).sum()], axis=1).astype(np.float64)

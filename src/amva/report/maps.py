"""Map panels as PNG: per-bin statistic maps on a shared colour scale per statistic.

A shared scale per column is what makes HIGH and LOW comparable at a glance; the
face-mask outline shows what counts as "outside the face".
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import xarray as xr

from amva.io import write_bytes

CELL = 224
HEADER = 40
_FONT = cv2.FONT_HERSHEY_SIMPLEX
GALLERY_COLUMNS = 8
_LABELS = {"mam": "MAM (mean)", "amv": "AM-V (std)", "median": "median", "std_mad": "std_mad"}
COLORMAPS = ("viridis", "cividis", "magma", "inferno", "plasma", "turbo", "jet", "hot")


def _colormap(name: str) -> int:
    if name not in COLORMAPS:
        raise ValueError(f"config report.colormap = {name!r}: choose one of {', '.join(COLORMAPS)}")
    return getattr(cv2, f"COLORMAP_{name.upper()}")


def _colour(values: np.ndarray, vmax: float, colormap: str) -> np.ndarray:
    scaled = np.clip(values / vmax if vmax > 0 else values * 0, 0, 1)
    img = cv2.applyColorMap((scaled * 255).astype(np.uint8), _colormap(colormap))
    return cv2.resize(img, (CELL, CELL), interpolation=cv2.INTER_NEAREST)


def _outline(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    big = cv2.resize(mask.astype(np.uint8), (CELL, CELL), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(img, contours, -1, (255, 255, 255), 1)


def label_strip(width: int, title: str, note: str) -> np.ndarray:
    strip = np.full((HEADER, width, 3), 255, np.uint8)
    cv2.putText(strip, title, (6, 16), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, note, (6, 34), _FONT, 0.42, (90, 90, 90), 1, cv2.LINE_AA)
    return strip


def map_cell(values: np.ndarray, vmax: float, mask: np.ndarray, title: str, colormap: str) -> np.ndarray:
    note = f"scale 0..{vmax:.3f}"
    return np.vstack([label_strip(CELL, title, note), _outline(_colour(values, vmax, colormap), mask)])


def _mean_face(pixels: np.ndarray, mask: np.ndarray, title: str) -> np.ndarray:
    img = cv2.cvtColor(pixels.mean(axis=0).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
    big = cv2.resize(img, (CELL, CELL), interpolation=cv2.INTER_LINEAR)
    return np.vstack([label_strip(CELL, title, f"mean of {len(pixels)} faces"), _outline(big, mask)])


def stat_panel(ds: xr.Dataset, faces: xr.Dataset, colormap: str = "viridis") -> np.ndarray:
    """Rows = bins; columns = the bin's mean face, then the statistics; D-AM-V below. BGR uint8.

    ``colormap`` is one of :data:`COLORMAPS` (OpenCV's implementations of the matplotlib maps).
    """
    mask = ds["face_mask"].values.astype(bool)
    labels = ds["bin_of_image"]
    rows = []
    for b in ds["bin"].values.tolist():
        ids = labels["image"].values[labels.values == b]
        cells = [_mean_face(faces["pixels"].sel(image=ids).values.astype(np.float64), mask, f"{b.upper()} faces")]
        for stat in ds["stat"].values.tolist():
            vmax = float(ds["maps"].sel(stat=stat).max())
            values = ds["maps"].sel(bin=b, stat=stat).values
            cells.append(map_cell(values, vmax, mask, f"{b.upper()} {_LABELS[stat]}", colormap))
        rows.append(np.hstack(cells))
    if "d_amv" in ds:
        d = ds["d_amv"].values
        extra = map_cell(d, float(d.max()), mask, "D-AM-V |HIGH-LOW|", colormap)
        pad = np.full((extra.shape[0], rows[0].shape[1] - CELL, 3), 255, np.uint8)
        rows.append(np.hstack([extra, pad]))
    return np.vstack(rows)


def write_png(img: np.ndarray, path: str | Path) -> Path:
    """Encode and move into place atomically; zlib level 6 makes the panels ~2.4x smaller than
    OpenCV's default for ~0.1 s each, and they are embedded in the report as base64."""
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError(f"could not encode {path}")
    return write_bytes(path, buf.tobytes())


def deviation_gallery(ds: xr.Dataset, faces: xr.Dataset, n: int = 8) -> np.ndarray:
    """The ``n`` LOW images whose deviation from the HIGH mean map lies most outside the face.

    Each tile blends the face with its deviation |MAM(HIGH) - A_i| (normalised per image, jet:
    red = large) and names the share of the deviation that lies outside the face mask. Tiles
    run in rows of :data:`GALLERY_COLUMNS`, best first.
    """
    if n < 1:
        raise ValueError(f"config report.gallery = {n}: show at least one image")
    mask = ds["face_mask"].values.astype(bool)
    labels = ds["bin_of_image"]
    low = labels["image"].values[labels.values == ds["bin"].values[-1]]
    share = ds["deviation_outside_share"].sel(image=low)
    worst = share["image"].values[np.argsort(-share.values, kind="stable")[:n]]
    tiles = []
    for image_id in worst:
        dev = ds["deviation"].sel(deviation_image=image_id).values
        heat = cv2.applyColorMap((255 * dev / max(float(dev.max()), 1e-12)).astype(np.uint8), cv2.COLORMAP_JET)
        face = cv2.cvtColor(faces["pixels"].sel(image=image_id).values, cv2.COLOR_RGB2BGR)
        blend = cv2.resize(cv2.addWeighted(face, 0.55, heat, 0.45, 0), (CELL, CELL), interpolation=cv2.INTER_LINEAR)
        note = f"{float(share.sel(image=image_id)):.0%} outside the face"
        tiles.append(np.vstack([label_strip(CELL, str(image_id)[:30], note), _outline(blend, mask)]))
    if not tiles:
        return np.full((HEADER + CELL, CELL, 3), 255, np.uint8)
    blank = np.full_like(tiles[0], 255)
    columns = min(len(tiles), GALLERY_COLUMNS)
    tiles += [blank] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)])

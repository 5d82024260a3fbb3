"""A record of a built dataset's pixels: one sha256 for all of them, one per image, one per tile.

The demo ladder is byte-identical on every CPU; its record, kept in the repository, is what
says so. When a build stops matching, the tile hashes say where an image changed without the
repository having to hold the pixels themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["TILE", "differences", "record"]

TILE = 16
"""Side of the square tiles (px) hashed one by one; edge tiles are smaller."""


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _tiles(face: np.ndarray) -> str:
    """The first 8 hex digits of each tile's sha256, row by row, separated by spaces."""
    h, w = face.shape[:2]
    return " ".join(_sha(face[y : y + TILE, x : x + TILE])[:8] for y in range(0, h, TILE) for x in range(0, w, TILE))


def record(ids: Sequence[str], pixels: np.ndarray) -> dict[str, Any]:
    """The record of ``pixels`` (image, y, x, channel) uint8, images named by ``ids`` in that order."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(ids) != len(pixels):
        raise ValueError(
            f"expected (image, y, x, channel) uint8 pixels for {len(ids)} ids, got {pixels.dtype} {pixels.shape}"
        )
    return {
        "shape": list(pixels.shape),
        "pixels_sha256": _sha(pixels),
        "images": {i: {"sha256": _sha(face), "tiles": _tiles(face)} for i, face in zip(ids, pixels, strict=True)},
    }


def differences(expected: Mapping[str, Any], ids: Sequence[str], pixels: np.ndarray) -> list[str]:
    """What differs between ``expected`` (a :func:`record`) and these pixels, one line per image,
    in image order; empty when they are the same bytes."""
    actual = record(ids, pixels)
    if actual["pixels_sha256"] == expected["pixels_sha256"]:
        return []
    lines = []
    if actual["shape"] != expected["shape"]:
        lines.append(f"shape {actual['shape']} instead of {expected['shape']}")
    missing = [i for i in expected["images"] if i not in actual["images"]]
    extra = [i for i in actual["images"] if i not in expected["images"]]
    if missing or extra:
        lines.append(f"images missing: {missing[:5]} ({len(missing)}); not in the record: {extra[:5]} ({len(extra)})")
    width = pixels.shape[2]
    per_row = -(-width // TILE)
    for image_id, now in actual["images"].items():
        before = expected["images"].get(image_id)
        if before is None or before["sha256"] == now["sha256"]:
            continue
        tiles = before["tiles"].split(), now["tiles"].split()
        changed = [k for k, (a, b) in enumerate(zip(*tiles, strict=True)) if a != b]
        y, x = divmod(changed[0], per_row)
        lines.append(
            f"{image_id}: {len(changed)} of {len(tiles[1])} {TILE}-px tiles differ, the first at "
            f"y {y * TILE}-{y * TILE + TILE - 1}, x {x * TILE}-{x * TILE + TILE - 1}"
        )
    return lines or ["the images are the same but not in the recorded order"]

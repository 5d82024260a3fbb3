"""The ``folder`` layout, ``root/<identity>/<image>``: detected and aligned, or pre-aligned.

Every file under ``root`` ends up either as a face or as a rejection with its reason;
one bad file never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amva.datasets.align import (
    ARCFACE_TEMPLATE,
    IMAGE_SUFFIXES,
    FaceDetector,
    Rejection,
    detect_and_align,
    read_rgb,
)


@dataclass(frozen=True, eq=False)
class FolderImage:
    """One usable face: its id is the path relative to the root."""

    id: str
    identity: str
    face: np.ndarray
    landmarks: np.ndarray
    detection_score: float


def pass_through(image_rgb: np.ndarray, image_id: str, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Pre-aligned input is used as it is; its landmarks are the template's by definition."""
    h, w = image_rgb.shape[:2]
    if (h, w) != (size, size):
        raise ValueError(
            f"image {image_id!r} is declared aligned but is {w}x{h} px, not {size}x{size}; "
            "set aligned: false to detect and align it"
        )
    return image_rgb, (ARCFACE_TEMPLATE * (size / 112.0)).astype(np.float32)


def read_folder(
    root: str | Path, aligned: bool = False, detector: FaceDetector | None = None
) -> tuple[list[FolderImage], list[Rejection]]:
    """Read every image below ``root`` in sorted order (ids are stable across runs)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset root {root} is not a directory")
    detector = detector or (None if aligned else FaceDetector())
    images: list[FolderImage] = []
    rejected: list[Rejection] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        image_id = path.relative_to(root).as_posix()
        parts = path.relative_to(root).parts
        if len(parts) != 2:
            rejected.append(Rejection(image_id, str(path), "not in a root/<identity>/<image> position"))
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            rejected.append(Rejection(image_id, str(path), f"not an image file (suffix {path.suffix!r})"))
            continue
        try:
            rgb = read_rgb(path)
            if aligned:
                face, landmarks = pass_through(rgb, image_id)
                score = float("nan")
            else:
                face, landmarks, det = detect_and_align(rgb, detector, image_id)
                score = det.score
        except ValueError as err:  # unreadable, no face, wrong size
            rejected.append(Rejection(image_id, str(path), str(err)))
            continue
        images.append(FolderImage(image_id, parts[0], face, landmarks, score))
    return images, rejected

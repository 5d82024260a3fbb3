"""The ``folder`` layout, ``root/<identity>/<image>``: detected and aligned, or pre-aligned.

Every file under ``root`` ends up either as a face or as a rejection with its reason;
one bad file never stops the others.
"""

from __future__ import annotations

from pathlib import Path

from amva.datasets.align import IMAGE_SUFFIXES, FaceDetector, Rejection
from amva.datasets.common import Entry, FaceImage, Options, load_entries, sample


def read_folder(
    root: str | Path,
    aligned: bool = False,
    detector: FaceDetector | None = None,
    opts: Options | None = None,
) -> tuple[list[FaceImage], list[Rejection]]:
    """Read every image below ``root`` in sorted order (ids are stable across runs).

    ``opts`` (shared options: ``limit``, ``max_pixels``, ``color_order``) overrides ``aligned``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset root {root} is not a directory")
    opts = opts or Options(aligned=aligned)
    entries, rejected = folder_entries(root)
    images, bad = load_entries(sample(entries, opts.limit, opts.seed), opts, detector)
    return images, rejected + bad


def folder_entries(root: Path) -> tuple[list[Entry], list[Rejection]]:
    """Every file below ``root``: an entry when it is an image at root/<identity>/<image>."""
    entries: list[Entry] = []
    rejected: list[Rejection] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        image_id = path.relative_to(root).as_posix()
        parts = path.relative_to(root).parts
        if len(parts) != 2:
            rejected.append(Rejection(image_id, str(path), "not in a root/<identity>/<image> position"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            rejected.append(Rejection(image_id, str(path), f"not an image file (suffix {path.suffix!r})"))
        elif not path.resolve().is_relative_to(root.resolve()):
            rejected.append(Rejection(image_id, str(path), f"symlink resolves outside the dataset root {root}"))
        else:
            entries.append(Entry(image_id, parts[0], path))
    return entries, rejected

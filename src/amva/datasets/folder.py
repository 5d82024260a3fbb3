"""The ``folder`` layout, ``root/<identity>/<image>``: detected and aligned, or pre-aligned.

Every file under ``root`` ends up either as a face or as a rejection with its reason;
one bad file never stops the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amva.datasets.align import IMAGE_SUFFIXES, Rejection
from amva.datasets.common import Entry, Listing, Options, load_entries, sample
from amva.datasets.format import DatasetFormat
from amva.options import Option


def read_folder(root: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """Every image below ``root`` in sorted order (ids are stable across runs); pairs from the identities."""
    if not root.is_dir():
        raise ValueError(f"dataset root {root} is not a directory")
    entries, rejected = folder_entries(root)
    return Listing(load_entries(sample(entries, opts.limit, opts.seed), opts), rejected)


def folder_entries(root: Path) -> tuple[list[Entry], list[Rejection]]:
    """Every file below ``root``: an entry when it is an image at root/<identity>/<image>."""
    entries: list[Entry] = []
    rejected: list[Rejection] = []
    real_root = root.resolve()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        image_id = path.relative_to(root).as_posix()
        parts = path.relative_to(root).parts
        if len(parts) != 2:
            rejected.append(Rejection(image_id, str(path), "not in a root/<identity>/<image> position"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            rejected.append(Rejection(image_id, str(path), f"not an image file (suffix {path.suffix!r})"))
        elif not path.resolve().is_relative_to(real_root):
            rejected.append(Rejection(image_id, str(path), f"symlink resolves outside the dataset root {root}"))
        else:
            entries.append(Entry(image_id, parts[0], path))
    return entries, rejected


ROOT = Option(str, None, "the image root", required=True, path=True)
"""The ``root`` key of the layouts below one folder (folder, lfw, pair_list)."""

FORMAT = DatasetFormat("folder", "`root/<identity>/<image>`", read_folder, options={"root": ROOT})

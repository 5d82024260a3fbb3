"""A CSV manifest: columns ``path``, ``identity`` and optionally ``x1,y1,…,x5,y5``.

Paths are relative to ``root`` (default: the CSV's folder). A row with all ten
landmark values is aligned on them directly (no detection; landmark order as
:data:`~amva.datasets.align.ARCFACE_TEMPLATE`); a row with none is detected (or
passed through with ``aligned: true``); a row with some, or with a non-number, is
rejected. Ids are the paths; pairs are every pair of images, as for ``folder``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from amva.datasets.align import FaceDetector, Rejection
from amva.datasets.common import Entry, Options, Read, inside, load_entries, sample

LANDMARK_COLUMNS = [f"{c}{i}" for i in range(1, 6) for c in "xy"]


def read_manifest(
    path: str | Path, opts: Options, root: str | Path | None = None, detector: FaceDetector | None = None
) -> Read:
    """Faces of the manifest's rows and every rejection (pairs: all of them)."""
    path = Path(path)
    root = Path(root) if root else path.parent
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"path", "identity"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {sorted(missing)}; it needs path, identity")
    has_lm = set(LANDMARK_COLUMNS) <= set(table.columns)
    entries: list[Entry] = []
    rejected: list[Rejection] = []
    for number, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        where = f"{path}:{number}"
        try:
            image_id, file = inside(root, row["path"])
            if not row["identity"].strip():
                raise ValueError("empty identity")
            landmarks = None
            if has_lm:
                values = [row[c].strip() for c in LANDMARK_COLUMNS]
                if all(values):
                    landmarks = np.array([float(v) for v in values], dtype=np.float64).reshape(5, 2)
                    if not np.isfinite(landmarks).all():
                        raise ValueError("landmarks must be finite numbers")
                elif any(values):
                    raise ValueError("some but not all of the 10 landmark values are given")
        except ValueError as err:
            rejected.append(Rejection(row["path"] or f"row:{number}", where, f"manifest line {number}: {err}"))
            continue
        entries.append(Entry(image_id, row["identity"].strip(), file, landmarks=landmarks, where=str(file)))
    images, bad = load_entries(sample(entries, opts.limit, opts.seed), opts, detector)
    return Read(images, rejected + bad, None)

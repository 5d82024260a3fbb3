"""A CSV manifest: columns ``path``, ``identity``, optionally ``x1,y1,…,x5,y5``, and any labels.

Paths are relative to ``root`` (default: the CSV's folder). A row with all ten
landmark values is aligned on them directly (no detection; landmark order as
:data:`~amva.datasets.align.ARCFACE_TEMPLATE`); a row with none is detected (or
passed through with ``aligned: true``); a row with some, or with a non-number, is
rejected. Every other column is kept as a string label coordinate over ``image`` in
faces.nc, named as in the CSV (so an analysis can group by it); a name faces.nc already
uses, or one with a space or '/', is refused. Ids are the paths; pairs come from the identities, as for ``folder``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amva.datasets.align import Rejection
from amva.datasets.common import Entry, Listing, Options, inside, load_entries, sample
from amva.datasets.format import DatasetFormat
from amva.options import Option

LANDMARK_COLUMNS = [f"{c}{i}" for i in range(1, 6) for c in "xy"]
RESERVED_NAMES = frozenset(
    {"image", "y", "x", "channel", "point", "coord", "identity", "detection_score", "faces_found"}
    | {"source", "degradation", "severity", "group", "pixels", "landmarks"}
)
"""Names of faces.nc's dimensions, variables and built-in labels (and ``group``, the grouping label)."""


def read_manifest(path: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """The manifest's rows (paths below ``spec["root"]``, default the CSV's folder), with their label columns."""
    root = Path(spec["root"]) if spec.get("root") else path.parent
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"path", "identity"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {sorted(missing)}; it needs path, identity")
    labels = tuple(c for c in table.columns if c not in {"path", "identity", *LANDMARK_COLUMNS})
    clash = [c for c in labels if c in RESERVED_NAMES or "/" in c or not c.strip() or c.split() != [c]]
    if clash:
        raise ValueError(
            f"{path}: column(s) {clash} cannot be label names (faces.nc uses {', '.join(sorted(RESERVED_NAMES))}; "
            "a netCDF coordinate name holds no '/' and no space); rename them in the CSV header"
        )
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
        own = {c: row[c] for c in labels}
        entries.append(Entry(image_id, row["identity"].strip(), file, landmarks=landmarks, where=str(file), labels=own))
    return Listing(load_entries(sample(entries, opts.limit, opts.seed), opts), rejected, extra_labels=labels)


FORMAT = DatasetFormat(
    "manifest",
    "a CSV of paths, identities and optional landmarks",
    read_manifest,
    options={
        "path": Option(str, None, "the CSV", required=True, path=True),
        "root": Option(str, None, "what paths are relative to", path=True),
    },
)

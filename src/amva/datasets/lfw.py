"""The LFW layout: ``root/<name>/<name>_<NNNN>.jpg`` and a ``pairs.txt`` of given pairs.

``pairs.txt`` starts with a header, either ``<folds>\\t<pairs per fold>`` (the 10-fold
View 2 file: per fold, that many genuine then that many impostor lines) or a single
count (the flat ``pairsDevTrain.txt``/``pairsDevTest.txt``). Rows are ``name n1 n2``
(genuine) or ``name1 n1 name2 n2`` (impostor). Only the images the pairs use are read
(``all_images: true`` reads every image too). A malformed line, or a pair naming a
missing or rejected image, is a ``pair:<line number>`` row of rejected.csv.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amva.datasets.align import Rejection
from amva.datasets.common import Entry, Listing, Options, Pair, inside, load_entries, sample
from amva.datasets.folder import ROOT, folder_entries
from amva.datasets.format import DatasetFormat
from amva.options import Option


def lfw_id(name: str, number: str) -> str:
    """``George_W_Bush``, ``12`` → ``George_W_Bush/George_W_Bush_0012.jpg``."""
    n = int(number)
    if n < 1:
        raise ValueError(f"image number {number!r} must be >= 1")
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"name {name!r} is not a plain directory name")
    return f"{name}/{name}_{n:04d}.jpg"


def parse_lfw_pairs(path: str | Path) -> tuple[list[Pair], list[Rejection]]:
    """The pairs of an LFW ``pairs.txt`` (10-fold or flat), and its malformed lines."""
    path = Path(path)
    lines = path.read_text().splitlines()
    rejected: list[Rejection] = []
    header = lines[0].split() if lines else []
    try:
        counts = [int(x) for x in header]
        if len(counts) not in (1, 2):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{path}: first line {lines[0] if lines else ''!r} is not an LFW header "
            "('<folds>\\t<pairs per fold>' or '<pairs>')"
        ) from None
    per_fold = counts[1] if len(counts) == 2 else 0
    pairs: list[Pair] = []
    row = 0
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        fold = row // (2 * per_fold) if per_fold else -1
        row += 1
        try:
            if len(fields) == 3:
                a, b, genuine = lfw_id(fields[0], fields[1]), lfw_id(fields[0], fields[2]), True
            elif len(fields) == 4:
                a, b, genuine = lfw_id(fields[0], fields[1]), lfw_id(fields[2], fields[3]), False
            else:
                raise ValueError(f"{len(fields)} fields, expected 'name n1 n2' or 'name1 n1 name2 n2'")
        except ValueError as err:
            rejected.append(Rejection(f"pair:{number}", str(path), f"malformed line {number} {line!r}: {err}"))
            continue
        pairs.append(Pair(a, b, genuine, number, fold))
    return pairs, rejected


def read_lfw(root: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """The images the (sampled) pairs of ``spec["pairs"]`` use (every image with ``all_images``), and the pairs."""
    if not root.is_dir():
        raise ValueError(f"dataset root {root} is not a directory")
    pairs_file = spec["pairs"]
    pairs, rejected = parse_lfw_pairs(pairs_file)
    pairs = sample(pairs, opts.limit, opts.seed)
    entries: list[Entry] = []
    if spec.get("all_images", False):
        entries, bad = folder_entries(root)
        rejected += bad
    listed = {e.id for e in entries}
    for image_id in dict.fromkeys(x for p in pairs for x in (p.a, p.b)):
        if image_id in listed:
            continue
        try:
            image_id, path = inside(root, image_id)
        except ValueError as err:
            rejected.append(Rejection(image_id, str(root / image_id), str(err)))
            continue
        if path.is_file():  # a missing file is reported once, by its pairs
            entries.append(Entry(image_id, image_id.split("/")[0], path))
    return Listing(load_entries(entries, opts), rejected, pairs, str(pairs_file))


FORMAT = DatasetFormat(
    "lfw",
    "LFW tree + `pairs.txt`",
    read_lfw,
    options={
        "root": ROOT,
        "pairs": Option(str, None, "pairs.txt (10-fold or flat)", required=True, path=True),
        "all_images": Option(bool, False, "read every image, not only those the pairs use"),
    },
)

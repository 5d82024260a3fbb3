"""CR-FIQA's flat layout: ``image_path_list.txt`` and ``pair_list.txt``.

``image_path_list.txt`` holds one image path per line, relative to ``root`` (CR-FIQA's
``--data-dir``; blank lines are skipped and do not count). ``pair_list.txt`` holds
``i j label`` lines (CR-FIQA's ``extract_bin.py`` writes ``%05d`` integers) where ``i``
and ``j`` are 0-based line indices into the image list and ``label`` is 1 (genuine)
or 0 (impostor); ``path_a path_b label`` lines (paths as in the image list) are read
too. Ids are the listed paths; identities are unknown (``""``).

CR-FIQA's ``extract_bin.py`` writes mxnet-decoded (RGB) arrays with ``cv2.imwrite``
(which expects BGR), so its JPEGs hold swapped channels: read them with
``color_order: BGR`` (and ``aligned: true``: they are 112x112 crops).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amva.datasets.align import Rejection
from amva.datasets.common import Entry, Listing, Options, Pair, inside, load_entries, sample
from amva.datasets.folder import ROOT
from amva.datasets.format import DatasetFormat
from amva.options import Option


def read_pair_list(root: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """The images the (sampled) pairs use, and the pairs (``spec``'s ``image_list``, ``pair_list``)."""
    if not root.is_dir():
        raise ValueError(f"dataset root {root} is not a directory")
    image_list = Path(spec["image_list"]) if spec.get("image_list") else root / "image_path_list.txt"
    pair_list = Path(spec["pair_list"]) if spec.get("pair_list") else root / "pair_list.txt"
    rejected: list[Rejection] = []
    listed: list[str] = []  # index → id as written (normalised when safe)
    files: dict[str, Path] = {}
    for line in image_list.read_text().splitlines():
        if not line.strip():
            continue
        try:
            image_id, path = inside(root, line)
            files.setdefault(image_id, path)
        except ValueError as err:
            image_id = line.strip()
            rejected.append(Rejection(image_id, line.strip(), str(err)))
        if image_id in listed:
            rejected.append(Rejection(image_id, str(image_list), f"duplicate id {image_id!r} in {image_list}"))
        listed.append(image_id)
    pairs: list[Pair] = []
    for number, line in enumerate(pair_list.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 3:
                raise ValueError(f"{len(fields)} fields, expected 'i j label' or 'path_a path_b label'")
            label = int(fields[2])
            if label not in (0, 1):
                raise ValueError(f"label {fields[2]!r} is not 0 or 1")
            if fields[0].isdigit() and fields[1].isdigit():
                i, j = int(fields[0]), int(fields[1])
                if max(i, j) >= len(listed):
                    raise ValueError(f"index {max(i, j)} beyond the {len(listed)} images of {image_list}")
                a, b = listed[i], listed[j]
            else:
                a, b = (inside(root, x)[0] for x in fields[:2])
        except ValueError as err:
            rejected.append(Rejection(f"pair:{number}", str(pair_list), f"malformed line {number} {line!r}: {err}"))
            continue
        pairs.append(Pair(a, b, bool(label), number))
    pairs = sample(pairs, opts.limit, opts.seed)
    used = dict.fromkeys(x for p in pairs for x in (p.a, p.b))
    entries = [Entry(x, "", files[x]) for x in used if x in files and files[x].is_file()]
    return Listing(load_entries(entries, opts), rejected, pairs, str(pair_list))


FORMAT = DatasetFormat(
    "pair_list",
    "CR-FIQA's `image_path_list.txt` + `pair_list.txt`",
    read_pair_list,
    options={
        "root": ROOT,
        "image_list": Option(str, None, "the image list", path=True),
        "pair_list": Option(str, None, "the pair list", path=True),
    },
)

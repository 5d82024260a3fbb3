"""Quality scores written by FIQA tools that amva does not run itself.

CR-FIQA, FaceQnet, SDD-FIQA, MagFace, DifFIQA, CLIB-FIQA, the GraFIQs tools and OFIQ all
write one score per image to a file. :func:`import_scores` reads such a file and turns it
into the same quality dataset that :func:`amva.quality.score` produces, for exactly the
images of an amva dataset, with a table of everything that did not line up.

Formats (``fmt``):

``path_score``
    ``<path> <score>`` lines (CR-FIQA, GraFIQs, FaceQnet, SDD-FIQA scripts). The score is
    the last whitespace-separated field and the path is everything before it, so paths
    may contain spaces. Blank lines and lines starting with ``#`` are skipped.
``csv``
    A CSV file with a header. ``id_column`` names the path column (default: the first),
    ``column`` the score column (needed when several columns are numeric). The delimiter
    is ``,`` unless the header has none and has ``\\t`` or ``;``. A file whose first row
    already holds numbers has no header; its columns are then named ``"0"``, ``"1"``, ...
``ofiq``
    OFIQ's ``;``-separated output: ``Filename;<Measure>;...;<Measure>.scalar;...;``
    (rows may end with ``;``). ``column`` picks any measure, default
    ``UnifiedQualityScore.scalar``. OFIQ writes ``-1`` in a ``.scalar`` column when it
    could not assess the measure; that reads as NaN (reported as ``failed``).
``auto``
    ``.csv``/``.tsv``: ``ofiq`` when the first line is ``;``-separated with ``Filename``
    first or a ``UnifiedQualityScore`` column, else ``csv``; any other file: ``ofiq`` if
    it starts with ``Filename;``, else ``path_score``.

Matching a file path to an image id (ids are dataset-relative, ``/``-separated): the path
is normalised (``\\`` -> ``/``, repeated ``/`` and leading ``./`` removed), ``strip_prefix``
is removed from its front, and then it must equal an id or end with one at a ``/``
boundary (``/data/lfw/obama/obama2.jpg`` matches ``obama/obama2.jpg``). Extensions must
match, except that an id without an image extension (the demo's ``obama2/gaussian_blur/3``)
matches the path with its image extension (``.../obama2/gaussian_blur/3.png``). An exact
match wins over suffix matches; a path whose suffix matches two ids is reported as
``ambiguous`` and used for neither. Matching is case-sensitive.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from amva.datasets.align import IMAGE_SUFFIXES  # extensions an exported image may carry when its id has none

Format = Literal["auto", "path_score", "csv", "ofiq"]
FORMATS = ("auto", "path_score", "csv", "ofiq")
OFIQ_DEFAULT_COLUMN = "UnifiedQualityScore.scalar"
OFIQ_FAILED = -1.0
PROBLEM_COLUMNS = ["kind", "item", "reason"]
PROBLEM_KINDS = ("unparsable", "failed", "ambiguous", "extra", "duplicate", "missing")
_SHOW = 5  # how many ids/columns an error message lists


@dataclass(frozen=True)
class _Entry:
    """One score line: the normalised path, the path as written, its score, its line."""

    key: str
    written: str
    score: float  # NaN: the tool wrote its "could not assess" value
    line: int


@dataclass
class _Parsed:
    entries: list[_Entry]
    problems: list[dict[str, str]]
    fmt: str
    column: str


# --------------------------------------------------------------------------- paths


def normalise_path(path: str, strip_prefix: str | None = None) -> str:
    """Forward slashes, no repeated ``/`` nor leading ``./``, ``strip_prefix`` removed."""
    p = path.strip()
    if len(p) >= 2 and p[0] == p[-1] and p[0] in "\"'":
        p = p[1:-1].strip()
    p = re.sub(r"/+", "/", p.replace("\\", "/"))
    while p.startswith("./"):
        p = p[2:]
    if strip_prefix is not None:
        prefix = re.sub(r"/+", "/", strip_prefix.strip().replace("\\", "/"))
        while prefix.startswith("./"):
            prefix = prefix[2:]
        prefix = prefix.rstrip("/")
        if not prefix:
            p = p.lstrip("/")
        elif p.startswith(prefix + "/"):
            p = p[len(prefix) + 1 :]
        elif p == prefix:
            p = ""
    return p


def _image_suffix(p: str) -> str:
    name = p.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot > 0 else ""
    return suffix if suffix in IMAGE_SUFFIXES else ""


class _Matcher:
    """Path -> the dataset ids it names: exact, else by suffix at a ``/`` boundary."""

    def __init__(self, ids: Sequence[str]):
        self.exact: dict[str, str] = {}
        for image_id in ids:
            key = normalise_path(str(image_id))
            if key in self.exact:
                raise ValueError(f"image ids must be unique; {image_id!r} is listed twice")
            self.exact[key] = str(image_id)
        # ids without an image extension also match the path with one (exported images)
        self.bare = {k: v for k, v in self.exact.items() if not _image_suffix(k)}

    def candidates(self, key: str) -> list[tuple[str, dict[str, str]]]:
        out = [(key, self.exact)]
        suffix = _image_suffix(key)
        if suffix:
            out.append((key[: -len(suffix)], self.bare))
        return out

    def match(self, key: str) -> list[str]:
        cands = self.candidates(key)
        for k, table in cands:
            if k in table:
                return [table[k]]
        hits: set[str] = set()
        for k, table in cands:
            parts = [part for part in k.split("/") if part]
            for i in range(1, len(parts)):
                hit = table.get("/".join(parts[i:]))
                if hit is not None:
                    hits.add(hit)
        return sorted(hits)


# --------------------------------------------------------------------------- parsing


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse_float(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _guess_format(path: Path, lines: list[str]) -> str:
    first = next((line for line in lines if line.strip()), "")
    fields = [f.strip() for f in first.split(";")]
    looks_ofiq = ";" in first and (fields[0] == "Filename" or any(f.startswith("UnifiedQualityScore") for f in fields))
    if path.suffix.lower() in (".csv", ".tsv"):
        return "ofiq" if looks_ofiq else "csv"
    return "ofiq" if first.lstrip().startswith("Filename;") else "path_score"


def _parse_path_score(lines: list[str], strip_prefix: str | None) -> _Parsed:
    entries, problems = [], []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        m = re.match(r"^(.*\S)\s+(\S+)$", text)
        if m is None:
            reason = f"line {number}: expected '<path> <score>', got {_short(text)!r}"
            problems.append(_problem("unparsable", text, reason))
            continue
        written, score_text = m.group(1), m.group(2)
        score = _parse_float(score_text)
        if score is None or not math.isfinite(score):
            problems.append(
                _problem("unparsable", written, f"line {number}: could not read a score from {_short(score_text)!r}")
            )
            continue
        entries.append(_Entry(normalise_path(written, strip_prefix), written, score, number))
    return _Parsed(entries, problems, "path_score", "score")


def _pick(name: str | None, header: list[str], what: str, path: Path, default: str | None = None) -> int:
    if name is None:
        name = default
    if name not in header:
        raise ValueError(f"{path}: no {what} column {name!r}; the columns are {', '.join(repr(h) for h in header)}")
    return header.index(name)


def _parse_table(
    text: str,
    path: Path,
    fmt: str,
    column: str | None,
    id_column: str | None,
    strip_prefix: str | None,
) -> _Parsed:
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise ValueError(f"{path}: the file is empty")
    if fmt == "ofiq":
        delimiter = ";"
    elif "," in header_line:
        delimiter = ","
    elif "\t" in header_line:
        delimiter = "\t"
    elif ";" in header_line:
        delimiter = ";"
    else:
        delimiter = ","
    reader = csv.reader(lines, delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    for row in reader:
        if not any(field.strip() for field in row):
            continue
        if header is None:
            header = [field.strip() for field in row]
            while header and not header[-1]:  # OFIQ ends every line with ';'
                header.pop()
            header_number = reader.line_num
            continue
        rows.append((reader.line_num, row))
    assert header is not None
    if fmt == "csv" and len(header) > 1 and all(_parse_float(h) is not None for h in header[1:]):
        # no header: the first row is data; columns are named by position
        rows.insert(0, (header_number, header))
        header = [str(i) for i in range(len(header))]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{path}: column names repeat in the header: {', '.join(map(repr, dup))}")

    if fmt == "ofiq":
        id_idx = _pick(id_column, header, "id", path, "Filename" if "Filename" in header else header[0])
        score_idx = _pick(column, header, "score", path, OFIQ_DEFAULT_COLUMN)
    else:
        id_idx = _pick(id_column, header, "id", path, header[0])
        if column is not None:
            score_idx = _pick(column, header, "score", path)
        else:
            numeric = [i for i in range(len(header)) if i != id_idx and _mostly_numeric(rows, i)]
            if len(numeric) != 1:
                others = [header[i] for i in range(len(header)) if i != id_idx]
                if not numeric:
                    raise ValueError(
                        f"{path}: no numeric score column besides id column {header[id_idx]!r}; "
                        f"the columns are {', '.join(map(repr, others))}; name one with column=..."
                    )
                raise ValueError(
                    f"{path}: several numeric columns ({', '.join(repr(header[i]) for i in numeric)}); "
                    f"pick the score with column=..."
                )
            score_idx = numeric[0]
    score_name = header[score_idx]
    ofiq_scalar = fmt == "ofiq" and score_name.endswith(".scalar")

    entries, problems = [], []
    for number, row in rows:
        written = row[id_idx].strip() if id_idx < len(row) else ""
        if score_idx >= len(row) or id_idx >= len(row):
            problems.append(
                _problem(
                    "unparsable",
                    written or _short(delimiter.join(row)),
                    f"line {number}: {len(row)} fields, the header has {len(header)}",
                )
            )
            continue
        if not written:
            problems.append(_problem("unparsable", _short(delimiter.join(row)), f"line {number}: no path"))
            continue
        raw_text = row[score_idx].strip()
        score = _parse_float(raw_text)
        if score is None or not math.isfinite(score):
            reason = "empty score" if not raw_text else f"could not read a score from {_short(raw_text)!r}"
            problems.append(_problem("unparsable", written, f"line {number}: {reason} in column {score_name!r}"))
            continue
        if ofiq_scalar and score == OFIQ_FAILED:
            score = math.nan
        entries.append(_Entry(normalise_path(written, strip_prefix), written, score, number))
    return _Parsed(entries, problems, fmt, score_name)


def _mostly_numeric(rows: list[tuple[int, list[str]]], i: int) -> bool:
    values = [row[i].strip() for _, row in rows if i < len(row) and row[i].strip()]
    good = sum(_parse_float(v) is not None for v in values)
    return bool(values) and good * 2 > len(values)


def _parse(
    path: str | Path,
    fmt: str,
    column: str | None,
    id_column: str | None,
    strip_prefix: str | None,
) -> _Parsed:
    if fmt not in FORMATS:
        raise ValueError(f"unknown scores file format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores file {path} does not exist")
    text = _read_text(path)
    lines = text.splitlines()
    if fmt == "auto":
        fmt = _guess_format(path, lines)
    if fmt == "path_score":
        if column is not None or id_column is not None:
            raise ValueError(f"{path}: column/id_column apply to csv and ofiq files, not to path_score")
        return _parse_path_score(lines, strip_prefix)
    return _parse_table(text, path, fmt, column, id_column, strip_prefix)


def _problem(kind: str, item: str, reason: str) -> dict[str, str]:
    return {"kind": kind, "item": item, "reason": reason}


# --------------------------------------------------------------------------- API


def read_scores(
    path: str | Path,
    fmt: Format = "auto",
    column: str | None = None,
    id_column: str | None = None,
    strip_prefix: str | None = None,
) -> pd.Series:
    """The scores in ``path``: one value per score line, in file order.

    The index (named ``id``) is the normalised path with ``strip_prefix`` removed; a path
    listed several times appears several times. Values are the raw floats the tool wrote;
    NaN where OFIQ wrote its "could not assess" ``-1``. Lines that cannot be read are
    skipped with a warning (:func:`import_scores` lists them in its problems table).
    """
    parsed = _parse(path, fmt, column, id_column, strip_prefix)
    if parsed.problems:
        first = parsed.problems[0]
        warnings.warn(
            f"{path}: skipped {len(parsed.problems)} unreadable line(s), e.g. {first['reason']}",
            stacklevel=2,
        )
    return pd.Series(
        np.array([e.score for e in parsed.entries], dtype=np.float64),
        index=pd.Index([e.key for e in parsed.entries], name="id", dtype=object),
        name=parsed.column,
    )


def import_scores(
    ids: Sequence[str],
    path: str | Path,
    *,
    fmt: Format = "auto",
    column: str | None = None,
    id_column: str | None = None,
    strip_prefix: str | None = None,
    higher_is_better: bool = True,
    min_coverage: float = 1.0,
    method: str = "scores_file",
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Quality dataset for exactly ``ids`` from a scores file, and a table of problems.

    The dataset has the layout of :func:`amva.quality.score`: ``quality`` (higher = better;
    ``-raw`` when ``higher_is_better`` is False) and ``raw`` over ``image`` = ``ids``, NaN
    where an image got no usable score. The problems table has columns ``kind``, ``item``
    (a dataset id, or a path as written in the file) and ``reason``; kinds are

    - ``unparsable``: a line that could not be read (``line K: ...``);
    - ``failed``: an image the tool wrote its "could not assess" value for (OFIQ ``-1``);
    - ``ambiguous``: a file path whose suffix matches several ids (used for none);
    - ``extra``: a file path that matches no image ("not in the dataset");
    - ``duplicate``: an image listed N times with different scores (left NaN; repeats of
      the same score are fine);
    - ``missing``: an image with no score in the file.

    Raises ValueError when fewer than ``min_coverage`` of ``ids`` get a score.
    """
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be within 0..1, got {min_coverage}")
    ids = [str(i) for i in ids]
    matcher = _Matcher(ids)
    parsed = _parse(path, fmt, column, id_column, strip_prefix)
    name = Path(path).name
    problems = list(parsed.problems)

    per_id: dict[str, list[_Entry]] = {}
    for entry in parsed.entries:
        hits = matcher.match(entry.key)
        if len(hits) == 1:
            per_id.setdefault(hits[0], []).append(entry)
        elif hits:
            shown = ", ".join(hits[:_SHOW]) + (f", ... ({len(hits)} in all)" if len(hits) > _SHOW else "")
            problems.append(
                _problem(
                    "ambiguous",
                    entry.written,
                    f"line {entry.line}: matches {len(hits)} images by suffix ({shown}); "
                    "set strip_prefix so that the path names one",
                )
            )
        else:
            problems.append(_problem("extra", entry.written, f"line {entry.line}: not in the dataset"))

    values = np.full(len(ids), np.nan)
    id_problems: list[dict[str, str]] = []
    for i, image_id in enumerate(ids):
        entries = per_id.get(image_id)
        if not entries:
            id_problems.append(_problem("missing", image_id, f"no score in {name}"))
            continue
        usable = sorted({e.score for e in entries if not math.isnan(e.score)})
        if not usable:
            id_problems.append(
                _problem("failed", image_id, f"line {entries[0].line}: {parsed.column} could not be assessed (-1)")
            )
        elif len(usable) > 1:
            lines = ", ".join(str(e.line) for e in entries)
            id_problems.append(
                _problem(
                    "duplicate",
                    image_id,
                    f"listed {len(entries)} times with different scores "
                    f"({', '.join(f'{v:g}' for v in usable)}; lines {lines})",
                )
            )
        else:
            values[i] = usable[0]
    problems += id_problems
    order = {k: n for n, k in enumerate(PROBLEM_KINDS)}
    table = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    table = table.sort_values("kind", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    matched = int(np.isfinite(values).sum())
    coverage = matched / len(ids) if ids else 1.0
    if coverage < min_coverage:
        raise ValueError(_coverage_message(path, parsed, ids, values, matched, coverage, min_coverage, table))

    ds = xr.Dataset(
        {"quality": ("image", values if higher_is_better else -values), "raw": ("image", values)},
        coords={"image": np.array(ids, dtype=object)},
        attrs={
            "method": method,
            "higher_is_better_raw": int(higher_is_better),
            "oriented": "higher = better",
            "scores_file": str(path),
            "scores_format": parsed.fmt,
            "scores_column": parsed.column,
            "coverage": coverage,
        },
    )
    ds["quality"].attrs = {"description": f"{method} quality, higher = better"}
    ds["raw"].attrs = {"description": f"{method} score as the tool wrote it ({name}, {parsed.column})"}
    return ds, table


def _coverage_message(
    path: str | Path,
    parsed: _Parsed,
    ids: list[str],
    values: np.ndarray,
    matched: int,
    coverage: float,
    min_coverage: float,
    table: pd.DataFrame,
) -> str:
    missing = [image_id for image_id, v in zip(ids, values, strict=True) if not np.isfinite(v)]
    shown = ", ".join(repr(m) for m in missing[:_SHOW])
    if len(missing) > _SHOW:
        shown += f", ... ({len(missing)} in all)"
    counts = table["kind"].value_counts()
    summary = ", ".join(f"{counts[k]} {k}" for k in PROBLEM_KINDS if k in counts)
    msg = (
        f"scores file {path}: only {matched} of {len(ids)} images have a score "
        f"(coverage {coverage:.1%} < min_coverage {min_coverage:.1%}); "
        f"without a score: {shown}. Problems: {summary}."
    )
    if matched == 0 and parsed.entries:
        msg += (
            f" No path in the file matched an image id (e.g. {parsed.entries[0].written!r} vs id {ids[0]!r}); "
            "check strip_prefix and that the file scores this dataset."
        )
    floor = math.floor(coverage * 100) / 100
    msg += f" To import anyway, leaving those images NaN, pass min_coverage={floor:g} (or lower)."
    return msg

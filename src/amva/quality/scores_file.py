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
from amva.options import Option
from amva.quality.method import Method, quality_dataset

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


Rows = list[tuple[int, list[str]]]  # (line number, fields) of every non-blank row after the header


def _delimiter(fmt: str, header_line: str) -> str:
    """``;`` for OFIQ; else the first of ``,``, tab and ``;`` that the header line holds (``,`` if none)."""
    if fmt == "ofiq":
        return ";"
    return next((d for d in (",", "\t", ";") if d in header_line), ",")


def _read_rows(lines: list[str], delimiter: str, fmt: str, path: Path) -> tuple[list[str], Rows]:
    """The header and the rows; a csv file whose first row holds numbers has no header (columns "0", "1", ...)."""
    reader = csv.reader(lines, delimiter=delimiter)
    rows: Rows = []
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
        rows.insert(0, (header_number, header))
        header = [str(i) for i in range(len(header))]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{path}: column names repeat in the header: {', '.join(map(repr, dup))}")
    return header, rows


def _columns(
    fmt: str, header: list[str], rows: Rows, column: str | None, id_column: str | None, path: Path
) -> tuple[int, int]:
    """The indices of the id and the score column: as named, else OFIQ's defaults or the one numeric column."""
    if fmt == "ofiq":
        id_idx = _pick(id_column, header, "id", path, "Filename" if "Filename" in header else header[0])
        return id_idx, _pick(column, header, "score", path, OFIQ_DEFAULT_COLUMN)
    id_idx = _pick(id_column, header, "id", path, header[0])
    if column is not None:
        return id_idx, _pick(column, header, "score", path)
    numeric = [i for i in range(len(header)) if i != id_idx and _mostly_numeric(rows, i)]
    if not numeric:
        others = [header[i] for i in range(len(header)) if i != id_idx]
        raise ValueError(
            f"{path}: no numeric score column besides id column {header[id_idx]!r}; "
            f"the columns are {', '.join(map(repr, others))}; name one with column=..."
        )
    if len(numeric) > 1:
        raise ValueError(
            f"{path}: several numeric columns ({', '.join(repr(header[i]) for i in numeric)}); "
            f"pick the score with column=..."
        )
    return id_idx, numeric[0]


def _row_entry(
    number: int, row: list[str], width: int, id_idx: int, score_idx: int, score_name: str, delimiter: str
) -> tuple[str, float] | dict[str, str]:
    """The path as written and the score of one row, or the problem that makes it unreadable."""
    written = row[id_idx].strip() if id_idx < len(row) else ""
    if score_idx >= len(row) or id_idx >= len(row):
        reason = f"line {number}: {len(row)} fields, the header has {width}"
        return _problem("unparsable", written or _short(delimiter.join(row)), reason)
    if not written:
        return _problem("unparsable", _short(delimiter.join(row)), f"line {number}: no path")
    raw_text = row[score_idx].strip()
    score = _parse_float(raw_text)
    if score is None or not math.isfinite(score):
        reason = "empty score" if not raw_text else f"could not read a score from {_short(raw_text)!r}"
        return _problem("unparsable", written, f"line {number}: {reason} in column {score_name!r}")
    return written, score


def _parse_table(
    text: str,
    path: Path,
    fmt: str,
    column: str | None,
    id_column: str | None,
    strip_prefix: str | None,
) -> _Parsed:
    """The score lines of a csv or OFIQ table, and the rows that could not be read."""
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise ValueError(f"{path}: the file is empty")
    delimiter = _delimiter(fmt, header_line)
    header, rows = _read_rows(lines, delimiter, fmt, path)
    id_idx, score_idx = _columns(fmt, header, rows, column, id_column, path)
    score_name = header[score_idx]
    ofiq_scalar = fmt == "ofiq" and score_name.endswith(".scalar")
    entries, problems = [], []
    for number, row in rows:
        read = _row_entry(number, row, len(header), id_idx, score_idx, score_name, delimiter)
        if isinstance(read, dict):
            problems.append(read)
            continue
        written, score = read
        if ofiq_scalar and score == OFIQ_FAILED:
            score = math.nan
        entries.append(_Entry(normalise_path(written, strip_prefix), written, score, number))
    return _Parsed(entries, problems, fmt, score_name)


def _mostly_numeric(rows: Rows, i: int) -> bool:
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
    parsed = _parse(path, fmt, column, id_column, strip_prefix)
    per_id, matching = _match(parsed.entries, _Matcher(ids))
    values, scoring = _scores(ids, per_id, parsed.column, Path(path).name)
    table = _problem_table([*parsed.problems, *matching, *scoring])
    matched = int(np.isfinite(values).sum())
    coverage = matched / len(ids) if ids else 1.0
    if coverage < min_coverage:
        raise ValueError(_coverage_message(path, parsed, ids, values, matched, coverage, min_coverage, table))
    ds = quality_dataset(
        np.array(ids, dtype=object),
        values,
        method,
        higher_is_better,
        f"the tool wrote it ({Path(path).name}, {parsed.column})",
        scores_file=str(path),
        scores_format=parsed.fmt,
        scores_column=parsed.column,
        coverage=coverage,
    )
    return ds, table


def _match(entries: list[_Entry], matcher: _Matcher) -> tuple[dict[str, list[_Entry]], list[dict[str, str]]]:
    """The score lines of each image id, and the lines that name no image or several."""
    per_id: dict[str, list[_Entry]] = {}
    problems = []
    for entry in entries:
        hits = matcher.match(entry.key)
        if len(hits) == 1:
            per_id.setdefault(hits[0], []).append(entry)
        elif hits:
            shown = ", ".join(hits[:_SHOW]) + (f", ... ({len(hits)} in all)" if len(hits) > _SHOW else "")
            reason = (
                f"line {entry.line}: matches {len(hits)} images by suffix ({shown}); "
                "set strip_prefix so that the path names one"
            )
            problems.append(_problem("ambiguous", entry.written, reason))
        else:
            problems.append(_problem("extra", entry.written, f"line {entry.line}: not in the dataset"))
    return per_id, problems


def _scores(
    ids: list[str], per_id: dict[str, list[_Entry]], column: str, name: str
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Each id's score (NaN where it has none, only failed ones, or different ones), and why it has none."""
    values = np.full(len(ids), np.nan)
    problems = []
    for i, image_id in enumerate(ids):
        entries = per_id.get(image_id)
        if not entries:
            problems.append(_problem("missing", image_id, f"no score in {name}"))
            continue
        usable = sorted({e.score for e in entries if not math.isnan(e.score)})
        if not usable:
            problems.append(
                _problem("failed", image_id, f"line {entries[0].line}: {column} could not be assessed (-1)")
            )
        elif len(usable) > 1:
            lines = ", ".join(str(e.line) for e in entries)
            reason = (
                f"listed {len(entries)} times with different scores "
                f"({', '.join(f'{v:g}' for v in usable)}; lines {lines})"
            )
            problems.append(_problem("duplicate", image_id, reason))
        else:
            values[i] = usable[0]
    return values, problems


def _problem_table(problems: list[dict[str, str]]) -> pd.DataFrame:
    """The problems as a table, kind by kind in the order of PROBLEM_KINDS (file order within a kind)."""
    order = {k: n for n, k in enumerate(PROBLEM_KINDS)}
    table = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    return table.sort_values("kind", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


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


RECORD = Method(
    name="scores_file",
    kind="imported",
    higher_is_better=None,
    options={
        "path": Option(str, None, "the tool's score file", required=True),
        "format": Option(str, "auto", f"how the file is laid out: {', '.join(FORMATS)}"),
        "column": Option(str | None, None, "the score column (csv, ofiq)"),
        "id_column": Option(str | None, None, "the image path column (csv, ofiq)"),
        "strip_prefix": Option(str | None, None, "removed from the paths before matching"),
        "higher_is_better": Option(bool, True, "the direction of the tool's score"),
        "min_coverage": Option(float, 1.0, "the share of the images that must get a score"),
    },
    inputs=("path",),
)
"""Imported scores: :func:`import_scores` reads them (its ``fmt`` is the option ``format``)."""

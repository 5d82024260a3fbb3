"""What every dataset format shares: safe image reading, detection, given pairs, rejections.

A reader lists :class:`Entry` items (an id, an identity, a file or the encoded bytes,
optionally 5 landmarks and labels) in a :class:`Listing`; :func:`load_entries` turns each,
lazily, into a :class:`FaceImage` or exactly one :class:`~amva.datasets.align.Rejection`,
so a dataset's pixels are read as they are written, never all at once. Bad input never
stops the run:

* the image header is read (Pillow, no pixel decoding) and images above ``max_pixels``
  (default 50 MP) are rejected *before* decoding: a decompression-bomb guard;
* corrupt, truncated and non-image files are rejected with the reason;
* grayscale, 16-bit, alpha and CMYK images are converted to 8-bit RGB by OpenCV
  (grey replicated, alpha dropped, 16-bit scaled down, CMYK converted) and *not*
  recorded: they are usable faces;
* several faces: the largest is kept, and the count is the ``faces_found`` label
  (``-1`` where no detection ran: ``aligned`` input or given landmarks);
* a second entry with an id already seen is rejected as a duplicate;
* a listed path that leaves the dataset root ("../", absolute, or a symlink that
  resolves outside) is rejected.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple, Protocol

import cv2
import numpy as np
import xarray as xr
from PIL import Image

from amva.datasets.align import FaceDetector, Rejection, align_to_template, largest_face, pass_through
from amva.datasets.faces import MAX_IMPOSTOR_PAIRS, pair_table

__all__ = [
    "MAX_PIXELS",
    "Entry",
    "Face",
    "FaceImage",
    "Listing",
    "Options",
    "Pair",
    "decode_image",
    "filter_pairs",
    "given_pairs",
    "inside",
    "load_entries",
    "sample",
]

MAX_PIXELS = 50_000_000
"""Default pixel limit (width x height) above which an image is not decoded."""


class Face(Protocol):
    """What a faces.nc row is made of: :class:`FaceImage`, or the demo's ``DemoImage``."""

    id: str
    identity: str
    face: np.ndarray
    landmarks: np.ndarray
    detection_score: float


@dataclass(frozen=True, eq=False)
class FaceImage:
    """One usable face: aligned RGB crop, its landmarks and labels."""

    id: str
    identity: str
    face: np.ndarray
    landmarks: np.ndarray
    detection_score: float
    faces_found: int
    labels: Mapping[str, str] = field(default_factory=dict)  # a reader's own label columns


@dataclass(frozen=True, eq=False)
class Entry:
    """An image to read: from ``path``, or from ``data`` (encoded bytes) when given."""

    id: str
    identity: str
    path: Path | None = None
    data: bytes | None = None
    landmarks: np.ndarray | None = None
    where: str = ""  # what rejected.csv shows as the path (default: path)
    labels: Mapping[str, str] = field(default_factory=dict)  # values of the listing's ``extra_labels``


@dataclass(frozen=True)
class Pair:
    """A given comparison: image ids ``a`` and ``b``, from line ``line`` of its list."""

    a: str
    b: str
    genuine: bool
    line: int
    fold: int = -1


class Listing(NamedTuple):
    """What a format reader returns before any pixel is read.

    ``faces`` yields each face or rejection as it is read (:func:`load_entries`); ``rejected``
    holds what listing already rejected; ``pairs`` are the pairs the dataset gives (None:
    pairs from the identities), checked against the usable faces with ``pairs_source`` named
    in their rejections. ``labels`` are the face attributes stored as label coordinates,
    ``extra_labels`` the names of each face's own ``labels``.
    """

    faces: Iterator[Face | Rejection]
    rejected: list[Rejection]
    pairs: list[Pair] | None = None
    pairs_source: str = ""
    labels: tuple[str, ...] = ("identity", "detection_score", "faces_found")
    extra_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    """The options every format shares."""

    aligned: bool = False
    limit: int | None = None
    seed: int = 0
    max_pixels: int = MAX_PIXELS
    color_order: str = "RGB"
    template: str = "arcface112"
    max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], seed: int = 0, aligned: bool = False, template: str = "arcface112"
    ) -> Options:
        order = str(spec.get("color_order", "RGB")).upper()
        if order not in ("RGB", "BGR"):
            raise ValueError(f"color_order must be 'RGB' or 'BGR', got {spec.get('color_order')!r}")
        limit = spec.get("limit")
        cap = spec.get("max_impostor_pairs", MAX_IMPOSTOR_PAIRS)
        for key, value in (("limit", limit), ("max_impostor_pairs", cap)):
            if value is not None and (isinstance(value, bool) or int(value) < 1):
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        aligned = bool(spec.get("aligned", aligned))
        if aligned and template != "arcface112":
            raise ValueError(
                f"the images are pre-aligned ArcFace 112x112 crops and cannot be re-aligned to {template}; "
                "give the original photos (aligned: false) for a model with that template"
            )
        return cls(
            aligned=aligned,
            limit=None if limit is None else int(limit),
            seed=int(seed),
            max_pixels=int(spec.get("max_pixels", MAX_PIXELS)),
            color_order=order,
            template=template,
            max_impostor_pairs=int(cap),
        )


def sample(items: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """``limit`` items drawn without replacement with ``seed``, in their original order."""
    if limit is None or len(items) <= limit:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]


def inside(root: Path, relative: str) -> tuple[str, Path]:
    """The id (posix, normalised) and file of ``relative`` below ``root``; ValueError if it escapes."""
    rel = relative.strip().replace("\\", "/")
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"path {relative!r} escapes the dataset root {root} (absolute or '..')")
    path = root / pure
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"path {relative!r} resolves outside the dataset root {root} (symlink)")
    return pure.as_posix(), path


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header only; None when no known format's header parses,
    (-1, -1) when it declares more pixels than even Pillow accepts."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError:  # above Pillow's own (higher) limit
        return (-1, -1)
    except Exception:
        return None


def decode_image(data: bytes, image_id: str, where: str, max_pixels: int, color_order: str = "RGB") -> np.ndarray:
    """Encoded bytes → RGB uint8, refusing images above ``max_pixels`` before decoding."""
    size = image_size(data)
    if size is None:
        raise ValueError(f"cannot read image {where}: corrupt, truncated or not an image (header unreadable)")
    w, h = size
    if w < 0:
        raise ValueError(
            f"image {image_id!r} declares more than {2 * Image.MAX_IMAGE_PIXELS} px (Pillow's limit), above "
            f"max_pixels={max_pixels}; not decoded (decompression-bomb guard)"
        )
    if w * h > max_pixels:
        raise ValueError(
            f"image {image_id!r} is {w}x{h} px ({w * h / 1e6:.1f} MP), above max_pixels={max_pixels}; "
            "not decoded (decompression-bomb guard); raise max_pixels to read it"
        )
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # grey/alpha/16-bit/CMYK → 8-bit BGR
    if bgr is None:
        raise ValueError(f"cannot read image {where}: corrupt or truncated data")
    code = cv2.COLOR_BGR2RGB if color_order == "RGB" else None
    return cv2.cvtColor(bgr, code) if code is not None else np.ascontiguousarray(bgr)


def _face(rgb: np.ndarray, entry: Entry, opts: Options, detector: FaceDetector | None) -> FaceImage:
    if entry.landmarks is not None:
        face, lm = align_to_template(rgb, entry.landmarks, opts.template)
        return FaceImage(entry.id, entry.identity, face, lm, float("nan"), -1, entry.labels)
    if opts.aligned:
        face, lm = pass_through(rgb, entry.id)
        return FaceImage(entry.id, entry.identity, face, lm, float("nan"), -1, entry.labels)
    assert detector is not None
    faces = detector.detect(rgb)
    det = largest_face(faces, rgb, detector, entry.id)
    face, lm = align_to_template(rgb, det.landmarks, opts.template)
    return FaceImage(entry.id, entry.identity, face, lm, det.score, len(faces), entry.labels)


def entry_pixels(entry: Entry, opts: Options) -> np.ndarray:
    """An entry's image as RGB uint8: its bytes or file, checked and decoded; ValueError naming it if it cannot be."""
    where = entry.where or str(entry.path)
    if entry.data is not None:
        data = entry.data
    else:
        try:
            data = Path(entry.path).read_bytes()  # type: ignore[arg-type]
        except OSError as err:
            raise ValueError(f"cannot read image {where}: {err.strerror or err}") from None
    return decode_image(data, entry.id, where, opts.max_pixels, opts.color_order)


def load_entries(
    entries: Iterable[Entry], opts: Options, detector: FaceDetector | None = None
) -> Iterator[FaceImage | Rejection]:
    """Read, check and align each entry as it is asked for; each bad one is exactly one rejection."""
    seen: dict[str, str] = {}
    for entry in entries:
        where = entry.where or str(entry.path)
        if entry.id in seen:
            yield Rejection(entry.id, where, f"duplicate id {entry.id!r}: already read from {seen[entry.id]}")
            continue
        seen[entry.id] = where
        try:
            rgb = entry_pixels(entry, opts)
            if detector is None and entry.landmarks is None and not opts.aligned:
                detector = FaceDetector()
            face = _face(rgb, entry, opts, detector)
        except ValueError as err:  # unreadable, too large, no face, wrong size
            yield Rejection(entry.id, where, str(err))
            continue
        yield face


def filter_pairs(
    pairs: Sequence[Pair], usable: Collection[str], rejected: Sequence[Rejection], source: str
) -> tuple[list[Pair], list[Rejection]]:
    """Pairs whose two images are ``usable`` (ids); each other pair becomes a ``pair:<line>`` rejection."""
    why = {r.id: r.reason for r in rejected}
    kept, dropped = [], []
    for p in pairs:
        bad = [x for x in dict.fromkeys((p.a, p.b)) if x not in usable]
        if not bad:
            kept.append(p)
            continue
        reason = "; ".join(f"image {x!r} " + (f"rejected: {why[x]}" if x in why else "not found") for x in bad)
        dropped.append(Rejection(f"pair:{p.line}", source, f"pair dropped: {reason}"))
    return kept, dropped


def given_pairs(pairs: Sequence[Pair]) -> xr.Dataset:
    """The pairs a dataset lists, as pairs.nc (same variables as ``identity_pairs``, plus ``fold``/``line``)."""
    a = np.array([p.a for p in pairs], dtype=str)
    b = np.array([p.b for p in pairs], dtype=str)
    genuine = np.array([p.genuine for p in pairs], dtype=bool)
    ds = pair_table(a, b, genuine).assign(
        fold=("pair", np.array([p.fold for p in pairs], dtype=np.int64)),
        line=("pair", np.array([p.line for p in pairs], dtype=np.int64)),
    )
    ds["fold"].attrs = {"description": "cross-validation fold from the pair list; -1 when it has none"}
    ds["line"].attrs = {"description": "line (or pair index) in the source pair list"}
    ds.attrs.update(genuine_pairs=int(genuine.sum()), impostor_pairs=int((~genuine).sum()), pairs="given")
    return ds

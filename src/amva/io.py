"""netCDF read/write with provenance, written atomically.

Every result is a labelled :class:`xarray.Dataset`. Writes go to a temporary file in
the target directory and are moved into place with :func:`os.replace`, so a job that is
killed mid-write never leaves a file that looks complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

ENGINE = "netcdf4"
_PACKAGES = ("amva", "torch", "numpy", "xarray", "netCDF4", "opencv-python-headless", "snakemake")

# HDF5 file locking fails on many cluster file systems (NFS, Lustre); results are
# written once by one job and read afterwards, so locking buys nothing here.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in chunks (model files are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(config: Mapping[str, Any] | None = None, **extra: str | int | float) -> dict[str, str | int | float]:
    """Attributes that say what made a file: the config slice, versions, commit, time.

    netCDF attributes accept only strings and numbers, so the config is a JSON string.
    """
    attrs: dict[str, str | int | float] = {
        "amva_config": json.dumps(config or {}, sort_keys=True, default=str),
        "amva_versions": json.dumps({p: _version(p) for p in _PACKAGES}, sort_keys=True),
        "amva_git_commit": _git_commit(),
        "amva_created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    attrs.update(extra)
    return attrs


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce attribute values to what netCDF stores (no bool, None, dict)."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif value is None:
            out[key] = ""
        elif isinstance(value, (dict, list, tuple)):
            out[key] = json.dumps(value, sort_keys=True, default=str)
        else:
            out[key] = value
    return out


def _atomic_target(path: Path, suffix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    return Path(tmp)


def write_dataset(
    ds: xr.Dataset, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None, **extra: str | int | float
) -> Path:
    """Write ``ds`` to netCDF with provenance attributes, atomically."""
    path = Path(path)
    ds = ds.copy()
    ds.attrs = _clean_attrs({**ds.attrs, **provenance(config, **extra)})
    for name in ds.variables:
        ds[name].attrs = _clean_attrs(ds[name].attrs)
    tmp = _atomic_target(path, ".nc")
    try:
        ds.to_netcdf(tmp, engine=ENGINE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a file atomically, readable by all (figures, tables, fetched photos)."""
    path = Path(path)
    tmp = _atomic_target(path, ".part")
    try:
        tmp.write_bytes(data)
        tmp.chmod(0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table atomically (rejected.csv, validation tables)."""
    return write_bytes(path, df.to_csv(index=False).encode())


class ResultFileError(ValueError):
    """An input netCDF is missing, truncated or not one of ours."""


def read_dataset(path: str | os.PathLike[str], required: tuple[str, ...] = ()) -> xr.Dataset:
    """Load a result file fully into memory, with a clear error for bad files.

    ``required`` names variables or coordinates the caller needs; a file lacking them
    is a foreign file or from an incompatible version.
    """
    path = Path(path)
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            ds = ds.load()
    except FileNotFoundError as exc:
        raise ResultFileError(f"{path}: file not found; run the workflow step that makes it") from exc
    except (OSError, ValueError) as exc:
        raise ResultFileError(
            f"{path}: not a readable netCDF file ({exc}); delete it and re-run (snakemake --rerun-incomplete)"
        ) from exc
    missing = [name for name in required if name not in ds.variables]
    if missing:
        raise ResultFileError(
            f"{path}: lacks {', '.join(missing)}; it was not written by this version of amva, delete it and re-run"
        )
    return ds

"""netCDF read/write with provenance, written atomically.

Every result is a labelled :class:`xarray.Dataset`. Writes go to a hidden temporary file
(``.<name>.<random>.part``) in the target directory and are moved into place with
:func:`os.replace`, so a job that is killed mid-write never leaves a file that looks
complete: the target is either absent or whole, and a leftover temporary neither has the
target's name nor ends in ``.nc``.
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

import numpy as np
import pandas as pd
import xarray as xr

ENGINE = "netcdf4"
_PACKAGES = ("amva", "torch", "numpy", "xarray", "netCDF4", "opencv-python-headless", "snakemake")

UNIT_RANGE = "0..1"
"""The ``range`` attribute of a per-image array whose values lie in [0, 1] (activation maps and
their deviations): such arrays are stored packed (:func:`encoding`)."""
_PACKED_SCALE = 1.0 / 65534.0  # 65535 is the fill value


def encoding(var: xr.Variable) -> dict[str, Any]:
    """How a variable is stored: a [0, 1] array as CF-packed uint16 (``scale_factor`` 1/65534, which
    xarray and any CF reader decode by themselves, within 1/65535 of the value written) with zlib;
    everything else as it is. A study writes maps for every (dataset, model, CAM, FIQA): packing
    takes them from 4 bytes a pixel to 2, and zlib to about 1."""
    if var.attrs.get("range") != UNIT_RANGE or var.dtype.kind != "f":
        return {}
    return {
        "dtype": "uint16",
        "scale_factor": np.float32(_PACKED_SCALE),
        "add_offset": np.float32(0.0),
        "_FillValue": np.uint16(65535),
        "zlib": True,
        "complevel": 6,
        "shuffle": True,
    }


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


def clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
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


def atomic_target(path: Path, suffix: str = "") -> Path:
    """A new hidden temporary next to ``path`` (same file system: the final rename is atomic), ending in ``.part``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f"{suffix}.part")
    os.close(fd)
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def commit_file(tmp: Path, path: Path) -> Path:
    """Move a finished temporary into place, with the permissions the umask gives new files.

    mkstemp creates files readable by their owner only; results on a shared cluster file
    system must be readable by whoever the user's umask lets read their other files.
    Temporaries of killed writers are left alone: a cache file may have several live
    writers at once (jobs fetching the same model), and only the rename decides.
    """
    tmp.chmod(0o666 & ~_umask())
    os.replace(tmp, path)
    return path


def write_dataset(
    ds: xr.Dataset, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None, **extra: str | int | float
) -> Path:
    """Write ``ds`` to netCDF with provenance attributes, atomically."""
    path = Path(path)
    ds = ds.copy()
    ds.attrs = clean_attrs({**ds.attrs, **provenance(config, **extra)})
    for name in ds.variables:
        ds[name].attrs = clean_attrs(ds[name].attrs)
    tmp = atomic_target(path)
    try:
        packed = {name: enc for name, var in ds.variables.items() if (enc := encoding(var))}
        ds.to_netcdf(tmp, engine=ENGINE, encoding=packed)  # other variables keep their own .encoding
        return commit_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a file atomically (figures, tables, fetched photos)."""
    path = Path(path)
    tmp = atomic_target(path)
    try:
        tmp.write_bytes(data)
        return commit_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table atomically (rejected.csv, validation tables)."""
    return write_bytes(path, df.to_csv(index=False).encode())


class ResultFileError(ValueError):
    """An input netCDF is missing, truncated or not one of ours."""


def read_dataset(path: str | os.PathLike[str], required: tuple[str, ...] = (), lazy: bool = False) -> xr.Dataset:
    """Load a result file, with a clear error for bad files.

    ``required`` names variables or coordinates the caller needs; a file lacking them
    is a foreign file (no amva provenance) or from an incompatible version of amva.
    ``lazy`` leaves the arrays on disk (the caller reads slices and closes the file),
    for jobs whose memory must not grow with the dataset.
    """
    path = Path(path)
    try:
        ds = xr.open_dataset(path, engine=ENGINE)
        if not lazy:
            with ds:
                ds = ds.load()
    except FileNotFoundError as exc:
        raise ResultFileError(f"{path}: file not found; run the workflow step that makes it") from exc
    except (OSError, ValueError) as exc:
        raise ResultFileError(
            f"{path}: not a readable netCDF file, truncated or corrupt ({exc}); delete it and re-run the step "
            "that makes it (snakemake --rerun-incomplete)"
        ) from exc
    missing = [name for name in required if name not in ds.variables]
    if missing:
        ds.close()
        found = ", ".join(map(str, ds.variables)) or "nothing"
        origin = (
            "written by another version of amva"
            if "amva_config" in ds.attrs
            else "not an amva result (it has no amva provenance attributes)"
        )
        raise ResultFileError(
            f"{path}: lacks {', '.join(missing)} (it holds {found}): {origin}; "
            "delete it and re-run the step that makes it"
        )
    return ds

"""Bounded-memory processing: read a dataset in chunks, write results chunk by chunk, split work into shards.

A 10k-image ``faces.nc`` holds 376 MB of pixels and its Grad-CAM maps 0.5 GB; a cluster
run may have 100k images. Extraction and scoring therefore never hold more than one
chunk: inputs are opened lazily and sliced, and each result chunk is appended to a
temporary netCDF that is moved into place (with provenance) only once complete, so
peak memory does not grow with the number of images and a killed job leaves no file
that looks finished.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import netCDF4
import numpy as np
import xarray as xr

from amva.io import ENGINE, atomic_target, clean_attrs, commit_file, encoding, provenance, read_dataset

CHUNK_IMAGES = 512  # images per read/write: ~20 MB of pixels, ~26 MB of 112x112 float32 maps
_CHUNK_BYTES = 1 << 20  # HDF5 chunk size on disk along ``image``
_CACHE_BYTES = 4 << 20  # HDF5 chunk cache per variable (netCDF's default is tens of MiB)


def open_lazy(path: str | os.PathLike[str], required: tuple[str, ...] = ()) -> xr.Dataset:
    """Open a result file without loading its arrays (:func:`amva.io.read_dataset` with ``lazy``)."""
    return read_dataset(path, required, lazy=True)


def image_count(path: str | os.PathLike[str]) -> int:
    """Number of images of a faces (or result) file, read from its header only."""
    with open_lazy(path) as ds:
        return int(ds.sizes.get("image", 0))


def chunk_size(batch_size: int, target: int = CHUNK_IMAGES) -> int:
    """A multiple of ``batch_size`` near ``target``, so chunking never changes how images are batched."""
    return batch_size * max(1, target // batch_size)


def shard_count(n_images: int, shard_size: int) -> int:
    """How many shards of at most ``shard_size`` images cover ``n_images`` (at least one)."""
    if shard_size < 1:
        raise ValueError(f"shard_size = {shard_size}: must be >= 1")
    return max(1, math.ceil(n_images / shard_size))


def shard_part(selection: np.ndarray, n_shards: int, index: int) -> np.ndarray:
    """The ``index``-th of ``n_shards`` consecutive, near-equal parts of ``selection``.

    The count comes from the whole dataset, so it is known before any per-image result
    (such as bins) exists; a selection smaller than the count leaves some parts empty.
    """
    if not 0 <= index < n_shards:
        raise ValueError(f"shard {index} does not exist: the dataset has {n_shards} shards")
    return np.array_split(np.asarray(selection), n_shards)[index]


def image_chunks(ds: xr.Dataset, positions: np.ndarray | None = None, size: int = CHUNK_IMAGES) -> Iterator[xr.Dataset]:
    """Consecutive chunks of ``ds`` at ``positions`` (default: every image), each loaded on its own.

    Positions may be in any order; each chunk is read in file order (what netCDF
    indexing needs) and put back in the requested order.
    """
    positions = np.arange(ds.sizes["image"]) if positions is None else np.asarray(positions, dtype=np.int64)
    for start in range(0, positions.size, size):
        part = positions[start : start + size]
        order = np.argsort(part, kind="stable")
        sorted_part = part[order]
        contiguous = sorted_part[-1] - sorted_part[0] + 1 == sorted_part.size
        index = slice(int(sorted_part[0]), int(sorted_part[-1]) + 1) if contiguous else sorted_part
        chunk = ds.isel(image=index).load()
        yield chunk if np.all(order[:-1] < order[1:]) else chunk.isel(image=np.argsort(order))


def _chunk_rows(var: xr.Variable, stored: np.dtype | None = None) -> int:
    """Images per HDF5 chunk: about 1 MiB as stored (``stored``: the packed dtype), at least one image."""
    row_bytes = max(1, (stored or var.dtype).itemsize) * int(np.prod(var.shape[1:], dtype=np.int64))
    return int(np.clip(_CHUNK_BYTES // row_bytes, 1, 4096))


class ChunkedWriter:
    """Append result chunks (``image`` first) to a temporary netCDF; publish it atomically on success.

    The first chunk is written by xarray, so types, fill values and attributes are what
    :func:`amva.io.write_dataset` would write; later chunks extend the unlimited
    ``image`` dimension through netCDF4. Provenance attributes are added as by
    ``write_dataset``. A writer left by an exception removes its temporary file.
    """

    def __init__(self, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self.path = Path(path)
        self._attrs = provenance(config, **extra)
        self._tmp: Path | None = None
        self._nc: netCDF4.Dataset | None = None
        self._pending: list[xr.Dataset] = []
        self._rows = 0  # images per HDF5 chunk, the same for every image variable (set by the first chunk)
        self._variables: list[str] = []
        self._written = 0
        self.images = 0

    def append(self, ds: xr.Dataset) -> None:
        """Add one chunk; every chunk has the same variables as the first.

        Rows are written in whole HDF5 chunks (the rest waits for the next append or the close):
        a compressed chunk written twice leaves its first copy as dead space in the file."""
        n = ds.sizes.get("image", 0)
        if n == 0:
            return
        given = sorted(name for name, v in ds.variables.items() if "image" in v.dims)
        if not self._rows:
            self._rows = min(self._encodings(ds)[1].values(), default=n)
            self._variables = given
        elif given != self._variables:
            raise ValueError(f"{self.path}: chunk variables {given} differ from the first chunk's {self._variables}")
        self._pending.append(ds)
        self.images += n
        self._flush(whole=True)

    def _flush(self, whole: bool) -> None:
        waiting = self.images - self._written
        count = waiting - waiting % self._rows if whole else waiting
        if count == 0:
            return
        ready = xr.concat(self._pending, dim="image", data_vars="minimal", coords="minimal", compat="override")
        self._pending = [ready.isel(image=slice(count, None))] if count < waiting else []
        chunk = ready.isel(image=slice(0, count))
        if self._nc is None:
            self._start(chunk)
        else:
            self._extend(chunk)
        self._written += count

    def _encodings(self, ds: xr.Dataset) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """How each variable is stored (:func:`amva.io.encoding`), and the rows per chunk each would take."""
        stored, rows = {}, {}
        for name, var in ds.variables.items():
            stored[name] = encoding(var)
            if "image" in var.dims:
                if var.dims[0] != "image":
                    raise ValueError(f"{name}: 'image' must be the first dimension to be written in chunks")
                packed = stored[name].get("dtype")
                rows[name] = _chunk_rows(var, packed and np.dtype(packed))
        return stored, rows

    def _start(self, ds: xr.Dataset) -> None:
        ds = ds.copy()
        ds.attrs = clean_attrs({**ds.attrs, **self._attrs})
        stored, _ = self._encodings(ds)
        for name, var in ds.variables.items():
            var.attrs = clean_attrs(var.attrs)
            var.encoding = {}
            if "image" in var.dims:
                stored[name]["chunksizes"] = (self._rows, *var.shape[1:])
        self._tmp = atomic_target(self.path)
        ds.to_netcdf(self._tmp, engine=ENGINE, unlimited_dims=["image"], encoding=stored)
        self._nc = netCDF4.Dataset(self._tmp, "a")
        for var in self._nc.variables.values():  # writes are whole chunks: a small cache suffices
            var.set_var_chunk_cache(size=_CACHE_BYTES)

    def _extend(self, ds: xr.Dataset) -> None:
        assert self._nc is not None
        end = self._written + ds.sizes["image"]
        for name in self._variables:  # append checked that every chunk has the first chunk's variables
            values = ds[name].values
            self._nc.variables[name][self._written : end] = (
                values.astype(object) if values.dtype.kind == "U" else values
            )

    def close(self) -> Path:
        """Finish the file and move it into place; with no chunk written, an empty dataset (``image`` = 0)."""
        if self._pending:
            self._flush(whole=False)
        if self._nc is None:
            empty = xr.Dataset(coords={"image": np.array([], dtype=str)}, attrs=clean_attrs(self._attrs))
            self._tmp = atomic_target(self.path)
            empty.to_netcdf(self._tmp, engine=ENGINE)
        else:
            self._nc.close()
            self._nc = None
        assert self._tmp is not None
        commit_file(self._tmp, self.path)  # the umask's permissions, then the atomic rename
        self._tmp = None
        return self.path

    def discard(self) -> None:
        """Drop what was written; the target is left as it was."""
        if self._nc is not None:
            self._nc.close()
            self._nc = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> ChunkedWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

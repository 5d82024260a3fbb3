"""Bounded-memory streaming (amva.stream): chunked reads and writes, shards, on real faces and SFace maps."""

import numpy as np
import pytest
import torch
import xarray as xr

from amva.cam import make_cam
from amva.cam.extract import extract
from amva.io import read_dataset, write_dataset
from amva.stream import ChunkedWriter, image_chunks, open_lazy, shard_count, shard_part


@pytest.fixture(scope="module")
def faces_file(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "faces.nc"
    write_dataset(demo[0].isel(image=slice(0, 12)), path, {"dataset": "demo"})
    return path


def without_time(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    del out.attrs["amva_created"]  # written seconds apart
    return out


def test_chunked_maps_equal_one_shot_write(faces_file, sface, tmp_path):
    """Grad-CAM maps streamed in chunks of 4 from a lazily opened file == one in-memory pass written at once."""
    torch.set_num_threads(2)
    cam = make_cam(sface, "gradcam")
    extra = {"model_sha256": "x", "cam_method": "gradcam"}
    write_dataset(
        extract(read_dataset(faces_file), cam, torch.device("cpu"), 4), tmp_path / "one.nc", {"a": 1}, **extra
    )
    with (
        open_lazy(faces_file, required=("pixels",)) as faces,
        ChunkedWriter(tmp_path / "chunked.nc", {"a": 1}, **extra) as out,
    ):
        for chunk in image_chunks(faces, size=4):
            out.append(extract(chunk, cam, torch.device("cpu"), 4))
        assert not faces["pixels"].variable._in_memory  # never loaded whole
    one, chunked = read_dataset(tmp_path / "one.nc"), read_dataset(tmp_path / "chunked.nc")
    xr.testing.assert_identical(without_time(one), without_time(chunked))
    assert chunked.sizes["image"] == 12 and float(chunked["maps"].max()) == pytest.approx(1.0, abs=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.nc", "one.nc"]  # no temporary left
    assert (tmp_path / "chunked.nc").stat().st_mode == (tmp_path / "one.nc").stat().st_mode  # umask, not 0600


def test_chunks_keep_the_requested_order(faces_file):
    positions = np.array([9, 2, 3, 4, 11, 0, 7])
    with open_lazy(faces_file) as faces:
        got = xr.concat(list(image_chunks(faces, positions, size=3)), "image")
        expected = faces.load().isel(image=positions)
    xr.testing.assert_identical(got, expected)


def test_shards_cover_the_selection_once_in_order():
    for n, size in [(20, 8), (20, 1000), (155, 50), (7, 7)]:
        k = shard_count(n, size)
        parts = [shard_part(np.arange(n), k, i) for i in range(k)]
        assert k == -(-n // size) and max(p.size for p in parts) <= size
        np.testing.assert_array_equal(np.concatenate(parts), np.arange(n))
    binned = np.array([5, 1, 17])  # fewer selected images than shards: some shards are empty
    parts = [shard_part(binned, 5, i) for i in range(5)]
    assert [p.size for p in parts] == [1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="shard 5 does not exist"):
        shard_part(binned, 5, 5)


def test_empty_and_failed_writes(tmp_path):
    with ChunkedWriter(tmp_path / "empty.nc", {"a": 1}):
        pass
    empty = read_dataset(tmp_path / "empty.nc")
    assert empty.sizes["image"] == 0 and "amva_config" in empty.attrs
    chunk = xr.Dataset({"q": ("image", np.ones(3))}, coords={"image": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="differ from the first chunk"), ChunkedWriter(tmp_path / "bad.nc") as out:
        out.append(chunk)
        out.append(chunk.rename(q="r"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.nc"]  # nothing that looks complete

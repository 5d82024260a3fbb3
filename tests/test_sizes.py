"""What a study writes and draws stays affordable: packed maps, compressed pair lists, thinned curves."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from amva.datasets.faces import identity_pairs, pair_table
from amva.io import UNIT_RANGE, read_dataset, write_dataset
from amva.report.charts import edc_chart
from amva.report.thin import BUCKETS, thin
from amva.stream import ChunkedWriter


def _maps(n: int) -> xr.Dataset:
    """Maps as CAMs make them: a 7x7 layer map, upsampled bilinearly and min-max scaled to [0, 1]."""
    native = np.maximum(np.random.default_rng(0).normal(size=(n, 1, 7, 7)), 0).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(native), size=(112, 112), mode="bilinear")[:, 0].numpy()
    maps = (up - up.min((1, 2), keepdims=True)) / np.ptp(up, (1, 2), keepdims=True)
    ids = [f"i{i}" for i in range(n)]
    return xr.Dataset({"maps": (("image", "y", "x"), maps, {"range": UNIT_RANGE})}, coords={"image": ids})


@pytest.mark.parametrize("chunked", [False, True])
def test_unit_maps_are_packed_and_read_back_within_one_step(tmp_path, chunked):
    ds = _maps(40)
    path = tmp_path / "cam.nc"
    if chunked:  # the CAM shards: the first chunk through xarray, the rest through netCDF4
        with ChunkedWriter(path) as out:
            out.append(ds.isel(image=slice(0, 16)))
            out.append(ds.isel(image=slice(16, 40)))
    else:
        write_dataset(ds, path)
    back = read_dataset(path)
    assert back["maps"].dtype == np.float32 and back["maps"].encoding["dtype"] == np.uint16
    assert np.abs(back["maps"].values - ds["maps"].values).max() <= 1 / 65535
    assert back["maps"].min() == 0 and back["maps"].max() == 1
    # float32 took 50 kB a map; appending rewrites the HDF5 chunk that a write ends inside (HDF5 keeps
    # the old copy), at most one chunk per append: a few kB per image in 16- and 24-image appends
    assert path.stat().st_size / 40 < (25_000 if chunked else 15_000), path.stat().st_size / 40


def test_pair_ids_are_compressed_and_read_back_as_strings(tmp_path):
    ids = np.array([f"person_{i // 5:04d}/img_{i % 5}.jpg" for i in range(2000)])
    pairs = identity_pairs(ids, np.arange(2000) // 5, max_impostor_pairs=200_000, seed=0)
    back = read_dataset(write_dataset(pairs, tmp_path / "pairs.nc"))
    assert back["a"].values.tolist() == pairs["a"].values.tolist()
    assert back["b"].values.tolist() == pairs["b"].values.tolist()
    assert (tmp_path / "pairs.nc").stat().st_size < 2_000_000  # variable-length strings: 31 MB
    odd = pair_table(np.array(["José/ü.jpg", "a"]), np.array(["名前/1.png", "b"]), np.array([True, False]))
    back = read_dataset(write_dataset(odd, tmp_path / "odd.nc"))
    assert back["a"].values.tolist() == ["José/ü.jpg", "a"] and back["b"].values.tolist() == ["名前/1.png", "b"]


def test_thinning_keeps_ends_limits_and_every_buckets_extremes():
    rng = np.random.default_rng(1)
    n = 100_000
    x = np.sort(rng.random(n))
    x[0], x[-1] = 0.0, 1.0
    y = np.cumsum(rng.normal(size=n))
    y[5000] = np.nan
    kept = thin(x, y, keep=(0.2, 0.3))
    assert kept.size <= 4 * BUCKETS + 2 and np.all(np.diff(kept) > 0)
    assert {0, n - 1} <= set(kept.tolist())
    for limit in (0.2, 0.3):  # the last point at or before each pAUC limit
        assert np.searchsorted(x, limit, side="right") - 1 in kept
    bucket = np.minimum((x * BUCKETS).astype(int), BUCKETS - 1)
    for b in range(BUCKETS):  # each bucket's lowest and highest point are drawn
        inside = bucket == b
        drawn = np.isin(np.flatnonzero(inside), kept)
        assert np.nanmax(y[inside]) == np.nanmax(y[inside][drawn])
        assert np.nanmin(y[inside]) == np.nanmin(y[inside][drawn])
    short = np.arange(4 * BUCKETS)
    assert np.array_equal(thin(short / short[-1], short), short)


def test_an_edc_of_many_pairs_draws_with_bounded_data():
    """The chart that raised altair's MaxRowsError at 7,927 rows: ten methods of 50,000 points each."""
    n = 50_000
    discard = np.linspace(0, 1, n)
    frames = []
    for k in range(10):
        error = np.maximum(0.3 - discard * (1 + k / 10), 0)
        kept = thin(discard, error, keep=(0.2, 0.3))
        frames.append(pd.DataFrame({"discard": discard[kept], "edc_error": error[kept], "fiqa": f"m{k}"}))
    curves = pd.concat(frames)
    assert len(curves) <= 10 * (4 * BUCKETS + 2)
    spec = edc_chart(curves, "EDC").to_dict()
    assert spec["mark"]["type"] == "line"

"""netCDF results: provenance, atomic writes, clear errors for bad files."""

import json

import numpy as np
import pytest
import xarray as xr

from amva.io import ResultFileError, read_dataset, write_dataset


def sample():
    return xr.Dataset({"v": ("image", np.arange(3.0))}, coords={"image": ["a", "b", "c"]}, attrs={"flag": True})


def test_roundtrip_with_provenance(tmp_path):
    path = write_dataset(sample(), tmp_path / "x.nc", {"k": 0.2, "nested": {"a": None}}, model_sha256="abc")
    ds = read_dataset(path, required=("v",))
    assert ds["image"].values.tolist() == ["a", "b", "c"]
    assert json.loads(ds.attrs["amva_config"]) == {"k": 0.2, "nested": {"a": None}}
    assert json.loads(ds.attrs["amva_versions"])["xarray"] == xr.__version__
    assert ds.attrs["model_sha256"] == "abc" and ds.attrs["flag"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.nc"]  # no temporary left behind


def test_truncated_and_foreign_files_fail_clearly(tmp_path):
    path = write_dataset(sample(), tmp_path / "x.nc")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ResultFileError, match="x.nc: not a readable netCDF"):
        read_dataset(path)
    good = write_dataset(sample(), tmp_path / "y.nc")
    with pytest.raises(ResultFileError, match="lacks maps"):
        read_dataset(good, required=("maps",))
    with pytest.raises(ResultFileError, match="not found"):
        read_dataset(tmp_path / "missing.nc")

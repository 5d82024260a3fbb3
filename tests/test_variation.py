"""Bins and AMVA statistics against independent references (torch, plain numpy loops)."""

import numpy as np
import pytest
import torch
import xarray as xr

from amva.datasets.align import ARCFACE_TEMPLATE
from amva.variation import amva, assign_bins, bins_dataset, face_mask, set_statistics


def quality(values):
    ids = [f"img{i:03d}" for i in range(len(values))]
    return xr.DataArray(np.asarray(values, float), coords={"image": ids}, dims="image")


def test_high_low_takes_top_and_bottom_k():
    q = quality([5, 1, 9, 3, 7, 2, 8, 4, 6, 0])
    bins = assign_bins(q, "high_low", k=3)
    assert sorted(q.values[bins.values == "high"]) == [7, 8, 9]
    assert sorted(q.values[bins.values == "low"]) == [0, 1, 2]
    assert (bins == "").sum() == 4
    assert (assign_bins(q, "high_low", k=0.2) == "high").sum() == 2


def test_bins_reject_overlap_and_skip_nan():
    q = quality([1, 2, 3, np.nan, 5])
    with pytest.raises(ValueError, match="bins.k"):
        assign_bins(q, "high_low", k=3)
    assert assign_bins(q, "high_low", k=2).sel(image="img003").item() == ""


def test_quantiles_are_equal_count_and_ordered():
    q = quality(np.arange(12.0))
    ds = bins_dataset(xr.Dataset({"quality": q}), "quantiles", n=3)
    assert ds["bin_name"].values.tolist() == ["q3", "q2", "q1"]
    assert ds["bin_size"].values.tolist() == [4, 4, 4]
    assert ds["score_min"].sel(bin_name="q3").item() == 8 and ds["score_max"].sel(bin_name="q1").item() == 3


def test_statistics_match_torch():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 5, 4))  # even N: torch.median takes the lower median
    mam, amv, med, std_mad = set_statistics(maps)
    t = torch.from_numpy(maps)
    ref_med = t.median(dim=0).values
    np.testing.assert_allclose(mam, t.mean(0).numpy())
    np.testing.assert_allclose(amv, t.std(0).numpy())
    np.testing.assert_allclose(med, ref_med.numpy())
    np.testing.assert_allclose(std_mad, ((t - ref_med) ** 2).std(0).numpy())


def test_face_mask_holds_template_points_not_corners():
    mask = face_mask(112, margin=0.5)
    for x, y in ARCFACE_TEMPLATE:
        assert mask.values[int(y), int(x)]
    assert not mask.values[0, 0] and not mask.values[5, 56] and not mask.values[56, 3]
    assert 0.1 < float(mask.mean()) < 0.35
    assert float(face_mask(112, 1.0).mean()) > float(mask.mean())


def test_amva_regions_and_d_amv():
    rng = np.random.default_rng(1)
    mask = face_mask(112, 0.5)
    n = 10
    base = np.where(mask.values, 0.8, 0.1)
    high = np.clip(base + rng.normal(0, 0.02, (n, 112, 112)), 0, 1)
    low = np.clip(base + np.where(mask.values, 0.02, 0.3) * rng.normal(0, 1, (n, 112, 112)), 0, 1)
    ids = [f"h{i}" for i in range(n)] + [f"l{i}" for i in range(n)] + ["mid"]
    maps = xr.DataArray(
        np.concatenate([high, low, base[None]]), coords={"image": ids}, dims=("image", "y", "x")
    ).assign_coords(y=np.arange(112), x=np.arange(112))
    q = xr.Dataset(
        {"quality": xr.DataArray(np.r_[np.arange(n) + 100.0, np.arange(n), 50.0], coords={"image": ids}, dims="image")}
    )
    bins = bins_dataset(q, "high_low", k=n)
    ds = amva(maps, bins, mask)
    amv_out = ds["region_mean"].sel(stat="amv", region="outside")
    assert amv_out.sel(bin="low") > 5 * amv_out.sel(bin="high")
    inside = mask.values
    expected = high.std(0, ddof=1)[~inside].mean()
    assert ds["region_mean"].sel(bin="high", stat="amv", region="outside").item() == pytest.approx(expected, rel=1e-5)
    d = np.abs(high.std(0, ddof=1) - low.std(0, ddof=1))
    np.testing.assert_allclose(ds["d_amv"].values, d, rtol=1e-4, atol=1e-6)
    assert ds["d_amv_normalised"].max().item() == pytest.approx(1.0)
    assert ds["bin_size"].values.tolist() == [n, n]
    with pytest.raises(ValueError, match="no activation map"):
        amva(maps.drop_sel(image=["l3"]), bins, mask)

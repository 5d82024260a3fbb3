"""Bins and AMVA statistics against independent references (torch, plain numpy loops)."""

import numpy as np
import pytest
import torch
import xarray as xr

from amva.bins import assign_bins, bins_dataset
from amva.datasets.align import ARCFACE_TEMPLATE
from amva.face_mask import face_mask
from amva.io import write_dataset
from amva.kde import gaussian_kde, scott_bandwidth
from amva.resampling import bootstrap_region_means, permutation_test
from amva.variation import set_statistics, variation


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
    with pytest.raises(ValueError, match="k = 3"):
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


def test_amva_regions_and_d_amv(contrast):
    maps, bins, mask, high, low, ds = contrast
    n = high.shape[0]
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
        variation(maps.drop_sel(image=["l3"]), bins, mask)


# --- distributions, profiles, deviations, uncertainty --------------------------------------


def smooth_maps(rng, n, size=112, cells=7):
    """Maps like the CAMs': 7x7 random activations upsampled (blockwise-linear) to ``size``."""
    coarse = rng.random((n, cells, cells))
    t = (np.arange(size) + 0.5) * cells / size - 0.5
    i0 = np.clip(np.floor(t).astype(int), 0, cells - 2)
    w = np.clip(t - i0, 0, 1)
    rows = coarse[:, i0] * (1 - w)[None, :, None] + coarse[:, i0 + 1] * w[None, :, None]
    return rows[:, :, i0] * (1 - w) + rows[:, :, i0 + 1] * w


def make_inputs(high, low, extra=()):
    """Maps and high/low bins for ``high`` and ``low`` map stacks (plus unbinned maps)."""
    n, size = high.shape[0], high.shape[-1]
    ids = [f"h{i}" for i in range(n)] + [f"l{i}" for i in range(low.shape[0])] + [f"u{i}" for i in range(len(extra))]
    stack = np.concatenate([high, low, *([np.asarray(extra)] if len(extra) else [])])
    maps = xr.DataArray(stack, coords={"image": ids}, dims=("image", "y", "x")).assign_coords(
        y=np.arange(size), x=np.arange(size)
    )
    scores = np.r_[np.arange(n) + 100.0, np.arange(low.shape[0]), np.full(len(extra), 50.0)]
    q = xr.Dataset({"quality": xr.DataArray(scores, coords={"image": ids}, dims="image")})
    return maps, bins_dataset(q, "high_low", k=n)


@pytest.fixture(scope="module")
def contrast():
    """LOW has much larger variation outside the face than HIGH (the paper's finding)."""
    rng = np.random.default_rng(1)
    mask = face_mask(112, 0.5)
    n = 10
    base = np.where(mask.values, 0.8, 0.1)
    high = np.clip(base + rng.normal(0, 0.02, (n, 112, 112)), 0, 1)
    low = np.clip(base + np.where(mask.values, 0.02, 0.3) * rng.normal(0, 1, (n, 112, 112)), 0, 1)
    maps, bins = make_inputs(high, low, extra=[base])
    return (
        maps,
        bins,
        mask,
        high,
        low,
        variation(maps, bins, mask, seed=3, n_boot=200, n_perm=500, deviation_maps="all"),
    )


def test_kde_matches_direct_sum_and_scipy():
    values = np.array([0.1, 0.15, 0.2, 0.22, 0.4, 0.41, 0.7])
    grid = np.linspace(-0.5, 1.5, 41)
    h = values.std(ddof=1) * len(values) ** (-1 / 5)
    direct = [
        sum(np.exp(-0.5 * ((g - v) / h) ** 2) for v in values) / (len(values) * h * np.sqrt(2 * np.pi)) for g in grid
    ]
    np.testing.assert_allclose(gaussian_kde(values, grid), direct, rtol=1e-12)
    assert scott_bandwidth(values) == pytest.approx(h)
    wide = np.linspace(-3, 4, 4001)
    assert np.trapezoid(gaussian_kde(values, wide), wide) == pytest.approx(1.0, abs=1e-6)
    from scipy import stats  # independent reference (test extra)

    np.testing.assert_allclose(gaussian_kde(values, grid), stats.gaussian_kde(values)(grid), rtol=1e-10)


def test_amv_density_quantiles_and_profiles(contrast):
    _, _, mask, high, low, ds = contrast
    assert ds["amv_density"].dims == ("bin", "amv_value") and 200 <= ds.sizes["amv_value"] <= 2001
    assert ds["amv_value"].values[0] == 0
    grid = ds["amv_value"].values
    for b, stack in (("high", high), ("low", low)):
        amv = stack.std(0, ddof=1).ravel()
        np.testing.assert_allclose(ds["amv_density"].sel(bin=b), gaussian_kde(amv, grid), rtol=1e-9)
        mass = np.trapezoid(ds["amv_density"].sel(bin=b).values, grid)
        assert mass == pytest.approx(ds["amv_density_mass"].sel(bin=b).item(), abs=2e-3)
        assert 0.5 < mass <= 1.0
        out = amv[~mask.values.ravel()]
        expected = np.quantile(out, [0.05, 0.25, 0.5, 0.75, 0.95])
        np.testing.assert_allclose(ds["amv_quantile"].sel(bin=b, region="outside"), expected, rtol=1e-12)
    assert ds["amv_quantile"].dims == ("bin", "region", "quantile")
    # LOW's outside AM-V distribution lies far to the right of HIGH's
    assert (
        ds["amv_quantile"].sel(bin="low", region="outside") > ds["amv_quantile"].sel(bin="high", region="outside")
    ).all()
    amv_maps = ds["maps"].sel(stat="amv")
    np.testing.assert_allclose(ds["profile_x"], amv_maps.sum("y"), rtol=1e-5)
    np.testing.assert_allclose(ds["profile_y"], amv_maps.sum("x"), rtol=1e-5)
    assert ds["profile_x"].dims == ("bin", "x") and ds["profile_y"].dims == ("bin", "y")
    np.testing.assert_allclose(ds["profile_x"].sel(bin="low"), low.std(0, ddof=1).sum(0), rtol=1e-12)


def test_deviation_from_high_mam(contrast):
    maps, _, mask, high, low, ds = contrast
    mam_high = high.mean(0)
    inside = mask.values
    assert ds["deviation"].dtype == np.float32 and ds["deviation"].dims == ("deviation_image", "y", "x")
    assert ds["deviation_image"].values.tolist() == maps["image"].values.tolist()
    for image, a in (("h0", high[0]), ("l3", low[3]), ("u0", maps.sel(image="u0").values)):
        d = np.abs(mam_high - a)
        np.testing.assert_allclose(ds["deviation"].sel(deviation_image=image), d, rtol=1e-5, atol=1e-6)
        assert ds["deviation_outside"].sel(image=image).item() == pytest.approx(d[~inside].mean(), rel=1e-5)
        assert ds["deviation_inside"].sel(image=image).item() == pytest.approx(d[inside].mean(), rel=1e-5)
        assert ds["deviation_outside_share"].sel(image=image).item() == pytest.approx(
            d[~inside].sum() / d.sum(), rel=1e-5
        )
    share = ds["deviation_outside_share"].values
    assert ((share >= 0) & (share <= 1)).all()
    # a LOW image deviates mostly outside the face, and more than a HIGH one
    assert ds["deviation_outside"].sel(image="l3") > 5 * ds["deviation_outside"].sel(image="h0")
    assert ds["bin_of_image"].sel(image="u0").item() == ""
    assert ds["deviation"].attrs["reference_bin"] == "high"


def test_bootstrap_interval_holds_estimate_and_narrows():
    rng = np.random.default_rng(5)
    mask = face_mask(112, 0.5)
    weights = np.stack([mask.values.ravel() / mask.values.sum(), ~mask.values.ravel() / (~mask.values).sum()], 1)
    widths = []
    for n in (8, 64):
        x = smooth_maps(rng, n).reshape(n, -1)
        ((mam, amv),) = bootstrap_region_means([x], [np.arange(n)], weights, 400, seed=0)
        point = {"mam": x.mean(0) @ weights, "amv": x.std(0, ddof=1) @ weights}
        for stat, reps in (("mam", mam), ("amv", amv)):
            lo, hi = np.quantile(reps, [0.025, 0.975], axis=0)
            assert (lo <= point[stat]).all() and (point[stat] <= hi).all(), (n, stat)
        widths.append(np.diff(np.quantile(amv, [0.025, 0.975], axis=0), axis=0).ravel())
    assert (widths[1] < 0.6 * widths[0]).all()


def test_bootstrap_replicate_matches_direct_std():
    """The sums identity gives the same region means as recomputing std on a resample, and the
    bias correction scales the AM-V replicates so that their mean is the set's own AM-V."""
    rng = np.random.default_rng(2)
    x = rng.random((5, 30))
    weights = np.stack([np.r_[np.ones(10), np.zeros(20)] / 10, np.r_[np.zeros(10), np.ones(20)] / 20], 1)
    images = [np.arange(5)]
    ((mam, amv),) = bootstrap_region_means([x], images, weights, 3, seed=11, bias_correct=False)
    ((_, corrected),) = bootstrap_region_means([x], images, weights, 3, seed=11)
    np.testing.assert_allclose(corrected, amv * (x.std(0, ddof=1) @ weights) / amv.mean(0), rtol=1e-12)
    draws = np.random.default_rng(11).integers(0, 5, size=(3, 5))  # one stratum of 5 singleton groups
    for r in range(3):
        sample = x[draws[r]]
        np.testing.assert_allclose(amv[r], sample.std(0, ddof=1) @ weights, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(mam[r], sample.mean(0) @ weights, rtol=1e-12)


def test_region_mean_ci_in_dataset(contrast):
    *_, ds = contrast
    ci = ds["region_mean_ci"]
    assert ci.dims == ("bin", "stat", "region", "bound")
    assert ci.sel(stat=["median", "std_mad"]).isnull().all()
    sub = ci.sel(stat=["mam", "amv"])
    assert (sub.sel(bound="lower") <= sub.sel(bound="upper")).all()
    point = ds["region_mean"].sel(stat=["mam", "amv"])
    assert (sub.sel(bound="lower") <= point).all() and (point <= sub.sel(bound="upper")).all()
    assert (sub.sel(bound="upper") - sub.sel(bound="lower") < 0.2 * point).all()


def test_ratio_ci_brackets_the_ratio(contrast):
    """The outside/inside ratio's interval comes from the same resamples and holds the estimate."""
    *_, ds = contrast
    ci = ds["outside_inside_ratio_ci"]
    assert ci.dims == ("bin", "stat", "bound")
    assert ci.sel(stat=["median", "std_mad"]).isnull().all()
    point = ds["outside_inside_ratio"].sel(stat=["mam", "amv"])
    sub = ci.sel(stat=["mam", "amv"])
    assert (sub.sel(bound="lower") <= point).all() and (point <= sub.sel(bound="upper")).all()
    assert (sub.sel(bound="lower") < sub.sel(bound="upper")).all()


def test_permutation_detects_outside_variation(contrast):
    *_, ds = contrast
    assert ds["perm_p_value"].item() == pytest.approx(1 / 501)
    assert ds["perm_statistic"].item() == pytest.approx(
        ds["region_mean"].sel(bin="low", stat="amv", region="outside").item()
        - ds["region_mean"].sel(bin="high", stat="amv", region="outside").item(),
        rel=1e-5,
    )
    assert ds["perm_ratio_p_value"].item() < 0.01 and ds["perm_ratio_statistic"].item() > 0


def test_permutation_p_roughly_uniform_when_exchangeable():
    rng = np.random.default_rng(7)
    inside = np.zeros((12, 12), bool)
    inside[3:9, 3:9] = True
    weights = np.stack([inside.ravel() / inside.sum(), ~inside.ravel() / (~inside).sum()], 1)
    p = []
    for trial in range(40):
        x = smooth_maps(rng, 12, size=12, cells=4).reshape(12, -1)
        p.append(permutation_test(x[:6], x[6:], weights, 199, seed=trial)["perm_p_value"])
    p = np.array(p)
    assert 0.35 < p.mean() < 0.65 and (p < 0.05).sum() <= 5
    assert (p >= 1 / 200).all() and (p <= 1).all()


def test_exchangeable_amva_and_seed_determinism():
    rng = np.random.default_rng(3)
    mask = face_mask(112, 0.5)
    x = smooth_maps(rng, 24)
    maps, bins = make_inputs(x[:12], x[12:])
    ds = variation(maps, bins, mask, seed=0, n_boot=100, n_perm=200)
    assert ds["perm_p_value"].item() > 0.05
    again = variation(maps, bins, mask, seed=0, n_boot=100, n_perm=200)
    xr.testing.assert_identical(ds, again)
    other = variation(maps, bins, mask, seed=1, n_boot=100, n_perm=200)
    assert not np.array_equal(other["region_mean_ci"].values, ds["region_mean_ci"].values, equal_nan=True)
    assert other["perm_p_value"].item() != ds["perm_p_value"].item()
    skipped = variation(maps, bins, mask, n_boot=0, n_perm=0)
    assert skipped["region_mean_ci"].isnull().all() and np.isnan(skipped["perm_p_value"].item())
    with pytest.raises(ValueError, match="n_perm"):
        variation(maps, bins, mask, n_perm=-1)


def test_quantile_bins_use_best_bin_and_write_netcdf(tmp_path):
    rng = np.random.default_rng(4)
    mask = face_mask(112, 0.5)
    x = smooth_maps(rng, 12)
    ids = [f"i{i}" for i in range(12)]
    maps = xr.DataArray(x, coords={"image": ids}, dims=("image", "y", "x")).assign_coords(
        y=np.arange(112), x=np.arange(112)
    )
    q = xr.Dataset({"quality": xr.DataArray(np.arange(12.0), coords={"image": ids}, dims="image")})
    ds = variation(maps, bins_dataset(q, "quantiles", n=3), mask, n_boot=50, n_perm=50, min_groups=2)
    assert ds["bin"].values.tolist() == ["q3", "q2", "q1"] and "d_amv" not in ds
    assert ds.attrs["reference_bin"] == "q3" and ds.attrs["contrast_bins"] == "q1 vs q3"
    # the default keeps the LOW bin's deviation maps (q1: i0..i3), the summaries of every image
    assert ds.attrs["deviation_maps"] == "low" and ds["deviation_image"].values.tolist() == ids[:4]
    assert ds["deviation_outside"].notnull().all()
    dev = np.abs(x[8:].mean(0) - x[0])
    np.testing.assert_allclose(ds["deviation"].sel(deviation_image="i0"), dev, rtol=1e-5, atol=1e-6)
    binned = variation(maps, bins_dataset(q, "quantiles", n=3), mask, n_boot=0, n_perm=0, deviation_maps="binned")
    assert binned["deviation_image"].size == 12
    with pytest.raises(ValueError, match="deviation_maps = 'some': choose one of low, binned, all"):
        variation(maps, bins_dataset(q, "quantiles", n=3), mask, n_boot=0, n_perm=0, deviation_maps="some")
    assert ds["region_mean_ci"].sel(stat="amv").notnull().all()
    too_few = variation(maps, bins_dataset(q, "quantiles", n=3), mask, n_boot=50, n_perm=50)  # 4 images < 5 groups
    assert too_few["region_mean_ci"].isnull().all() and too_few.attrs["enough_groups"] == 0
    assert np.isfinite(too_few["perm_p_value"].item())  # the test still runs; the report withholds it
    path = write_dataset(ds, tmp_path / "amva.nc")
    back = xr.open_dataset(path, engine="netcdf4").load()
    # stored CF-packed (uint16 with zlib): read back within 1/65535
    np.testing.assert_allclose(back["deviation"], ds["deviation"], rtol=0, atol=1 / 65535)
    assert back["deviation"].encoding["dtype"] == np.uint16 and back["deviation"].encoding["zlib"]
    assert back["perm_p_value"].item() == ds["perm_p_value"].item()
    assert (
        back["amv_density"].attrs["units"]
        and back["bin_of_image"].values.tolist() == ds["bin_of_image"].values.tolist()
    )


def test_lazy_maps_read_in_chunks_give_the_same_statistics(contrast, tmp_path, monkeypatch):
    """The workflow opens the CAM file lazily and reads deviations chunk by chunk: same numbers."""
    import amva.variation
    from amva.stream import open_lazy

    maps, bins, mask, *_, expected = contrast
    path = write_dataset(xr.Dataset({"maps": maps}), tmp_path / "cam.nc")
    monkeypatch.setattr(amva.variation, "_DEVIATION_CHUNK", 3)  # 21 images: 7 reads
    with open_lazy(path, required=("maps",)) as cams:
        ds = amva.variation.variation(cams["maps"], bins, mask, seed=3, n_boot=200, n_perm=500, deviation_maps="all")
    xr.testing.assert_allclose(ds.drop_attrs(), expected.drop_attrs(), rtol=1e-6)


def test_baseline_r_per_bin_with_a_grouped_interval(contrast):
    """The maps' r with the channel-mean map, summarised per bin; a bin whose r is planted higher shows it."""
    maps, bins, mask, *_ = contrast
    ids = maps["image"].values
    rng = np.random.default_rng(7)
    labels = bins["bin"].sel(image=ids).values
    r = np.where(labels == "low", 0.95, 0.3) + rng.normal(0, 0.01, ids.size)
    r[0] = np.nan  # a constant map has no correlation
    baseline_r = xr.DataArray(r, coords={"image": ids}, dims="image")
    ds = variation(maps, bins, mask, seed=3, n_boot=300, n_perm=0, min_groups=2, per_image={"baseline_r": baseline_r})
    for b in ("high", "low"):
        members = bins["image"].values[bins["bin"].values == b]
        values = baseline_r.sel(image=members).values
        assert ds["baseline_r_median"].sel(bin=b).item() == pytest.approx(np.nanmedian(values))
        assert ds["baseline_r_maps"].sel(bin=b).item() == np.isfinite(values).sum()
        lower, upper = ds["baseline_r_median_ci"].sel(bin=b).values
        assert lower <= ds["baseline_r_median"].sel(bin=b).item() <= upper
    assert ds["baseline_r_median_ci"].sel(bin="high", bound="upper") < ds["baseline_r_median_ci"].sel(
        bin="low", bound="lower"
    )
    assert "baseline_r_median" not in variation(maps, bins, mask, seed=3, n_boot=0, n_perm=0)


def test_bootstrap_medians_move_whole_groups():
    """One group of three equal values and three singletons: every replicate's median is a value present."""
    from amva.resampling import bootstrap_medians

    values = [np.array([1.0, 1.0, 1.0, 2.0, 3.0, 4.0])]
    groups = [np.array(["a", "a", "a", "b", "c", "d"])]
    reps = bootstrap_medians(values, groups, 500, 0)
    assert reps.shape == (500, 1) and set(np.unique(reps)) <= {1.0, 2.0, 3.0, 4.0}
    assert np.mean(reps == 1.0) > 0.3  # group a (half the images) drawn as a unit
    assert np.isnan(bootstrap_medians([np.array([np.nan, np.nan])], [np.array(["a", "b"])], 10, 0)).all()

"""Grouped inference: a p-value that bin make-up alone cannot produce, and intervals that cover.

Simulated maps, small (12 x 12 or 8 x 8), with a known truth: each image is its group's
template (the photo) plus noise, so near-copies of one photo vary little whatever their
quality, as on the demo ladder.
"""

import numpy as np
import pytest
import xarray as xr

from amva.bins import bins_dataset
from amva.face_mask import face_mask, region_weights
from amva.resampling import Design, _permuted_membership, bootstrap_region_means, permutation_test
from amva.variation import variation

SIZE = 12
INSIDE = np.zeros((SIZE, SIZE), bool)
INSIDE[3:9, 3:9] = True
WEIGHTS = region_weights(INSIDE)
# HIGH is mostly group 0 (as SER-FIQ's HIGH on the demo is mostly one photo); LOW spreads over all
HIGH_COUNTS = {0: 14, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2}
LOW_COUNTS = {0: 2, 1: 4, 2: 4, 3: 4, 4: 4, 5: 4}


def confounded(rng, effect=0.0):
    """HIGH/LOW maps whose make-up differs; LOW's noise outside the face is scaled by 1 + effect."""
    templates = rng.random((len(HIGH_COUNTS), SIZE * SIZE))
    outside = ~INSIDE.ravel()
    sets, groups = ([], []), ([], [])
    for side, counts in enumerate((HIGH_COUNTS, LOW_COUNTS)):
        for g, n in counts.items():
            noise = rng.normal(0, 0.05, (n, SIZE * SIZE))
            noise[:, outside] *= 1 + effect * side
            sets[side].append(templates[g] + noise)
            groups[side].extend([f"photo{g}"] * n)
    return np.concatenate(sets[0]), np.concatenate(sets[1]), np.array(groups[0]), np.array(groups[1])


def test_make_up_alone_fools_the_image_level_test_but_not_the_stratified_one():
    rng = np.random.default_rng(0)
    image_level, grouped = [], []
    for seed in range(200):
        x_h, x_l, g_h, g_l = confounded(rng)
        image_level.append(permutation_test(x_h, x_l, WEIGHTS, 499, seed)["perm_p_value"])
        grouped.append(permutation_test(x_h, x_l, WEIGHTS, 199, seed, g_h, g_l)["perm_p_value"])
    image_level, grouped = np.array(image_level), np.array(grouped)
    assert (image_level < 0.01).mean() > 0.95  # no quality effect, yet "significant"
    rejection = (grouped < 0.05).mean()  # binomial sd at 200 seeds: 0.015
    assert 0.01 <= rejection <= 0.09, rejection
    assert 0.42 < grouped.mean() < 0.58  # uniform on [0, 1] has mean 0.5 (sd of the mean 0.02)
    counts, _ = np.histogram(grouped, bins=4, range=(0, 1))
    assert counts.min() > 30  # 50 expected per quarter


def test_a_planted_outside_effect_is_detected_by_both_tests():
    rng = np.random.default_rng(1)
    for seed in range(5):
        x_h, x_l, g_h, g_l = confounded(rng, effect=2.0)
        assert permutation_test(x_h, x_l, WEIGHTS, 199, seed)["perm_p_value"] < 0.01
        res = permutation_test(x_h, x_l, WEIGHTS, 199, seed, g_h, g_l)
        assert res["perm_p_value"] < 0.01 and res["perm_groups"] == 6


def test_permutations_keep_each_groups_counts():
    """Mixed groups keep their HIGH count; pure groups move whole, keeping how many are HIGH."""
    high = np.array(["m1", "m1", "m2", "p1", "p2", "p2"])
    low = np.array(["m1", "m2", "m2", "p3", "p4"])
    design = Design([high, low])
    member = _permuted_membership(design, 300, np.random.default_rng(0))
    assert member[0].tolist() == [1] * 6 + [0] * 5
    codes = design.codes
    for g in ("m1", "m2"):
        cols = np.flatnonzero(np.concatenate([high, low]) == g)
        assert (member[:, cols].sum(axis=1) == (high == g).sum()).all()
        assert len({tuple(r) for r in member[:, cols]}) == 3  # C(3, 2) = C(3, 1) arrangements, all seen
    pure = ~design.mixed[codes]
    per_group = {tuple(member[r, pure]) for r in range(member.shape[0])}
    for row in per_group:  # images of a pure group always share their label
        labels = dict(zip(codes[pure].tolist(), row, strict=True))
        assert sum(labels.values()) == 2  # p1 and p2 were HIGH: two pure groups stay HIGH
    assert len(per_group) == 6  # C(4, 2) ways to choose them
    assert (
        permutation_test(*(np.zeros((n, 4)) for n in (6, 5)), np.full((4, 2), 0.25), 10, 0, high, low)["perm_groups"]
        == 6
    )


def test_singleton_groups_are_the_image_level_test():
    rng = np.random.default_rng(2)
    x = rng.random((14, SIZE * SIZE))
    ids = np.array([f"i{i}" for i in range(14)])
    plain = permutation_test(x[:6], x[6:], WEIGHTS, 99, 5)
    named = permutation_test(x[:6], x[6:], WEIGHTS, 99, 5, ids[:6], ids[6:])
    assert plain == named and plain["perm_groups"] == 14


def draw_clustered(rng, groups, per_group, size=8):
    effect = rng.normal(0, 0.3, (groups, size * size))
    x = np.repeat(effect, per_group, axis=0) + 0.5 + rng.normal(0, 0.1, (groups * per_group, size * size))
    return x, np.repeat([f"g{k}" for k in range(groups)], per_group)


def test_cluster_bootstrap_covers_near_95_percent_on_clustered_data():
    """MAM: the truth is the mean 0.5; AM-V: the expectation of a set's AM-V under the same design."""
    inside = np.zeros((8, 8), bool)
    inside[2:6, 2:6] = True
    weights = region_weights(inside)
    rng = np.random.default_rng(3)
    truth_amv = np.mean([(draw_clustered(rng, 30, 3)[0].std(0, ddof=1) @ weights)[1] for _ in range(2000)])
    hits = {"mam": [], "amv": [], "mam_images": []}
    for rep in range(300):
        x, g = draw_clustered(rng, 30, 3)
        ((mam, amv),) = bootstrap_region_means([x], [g], weights, 400, rep)
        ((mam_i, _),) = bootstrap_region_means([x], [np.arange(len(g))], weights, 400, rep)
        for key, reps, truth in (("mam", mam, 0.5), ("amv", amv, truth_amv), ("mam_images", mam_i, 0.5)):
            lo, hi = np.nanquantile(reps[:, 1], [0.025, 0.975])
            hits[key].append(lo <= truth <= hi)
    coverage = {k: float(np.mean(v)) for k, v in hits.items()}  # binomial sd at 300 reps: 0.013
    assert 0.90 <= coverage["mam"] <= 0.99 and 0.90 <= coverage["amv"] <= 0.99, coverage
    assert coverage["mam_images"] < 0.80, coverage  # images of one group are not independent


def as_amva_inputs(x_h, x_l, g_h, g_l, size=SIZE):
    n_h, n_l = len(g_h), len(g_l)
    ids = [f"h{i}" for i in range(n_h)] + [f"l{i}" for i in range(n_l)]
    maps = xr.DataArray(
        np.concatenate([x_h, x_l]).reshape(-1, size, size),
        coords={"image": ids, "y": np.arange(size), "x": np.arange(size)},
        dims=("image", "y", "x"),
    )
    q = xr.Dataset({"quality": ("image", np.r_[np.arange(n_h) + 100.0, np.arange(n_l)])}, coords={"image": ids})
    groups = xr.DataArray(np.concatenate([g_h, g_l]), coords={"image": ids}, dims="image")
    return maps, bins_dataset(q, "high_low", k=n_h, groups=groups, group_by="photo")


def test_amva_reports_grouped_and_image_level_inference_and_the_make_up():
    rng = np.random.default_rng(4)
    x_h, x_l, g_h, g_l = confounded(rng)
    x_h, g_h = x_h[2:], g_h[2:]  # equal sizes for high_low bins: 22 / 22 (HIGH: 12 of photo0)
    maps, bins = as_amva_inputs(x_h, x_l, g_h, g_l)
    mask = xr.DataArray(INSIDE, dims=("y", "x"), coords={"y": np.arange(SIZE), "x": np.arange(SIZE)})
    ds = variation(maps, bins, mask, seed=0, n_boot=200, n_perm=199)
    assert ds["perm_p_value_image_level"].item() < 0.01 and ds["perm_p_value"].item() > 0.05
    assert ds.attrs["group_by"] == "photo" and "grouped by photo" in ds.attrs["inference"]
    assert ds["bin_groups"].values.tolist() == [6, 6] and ds["bin_groups_used"].values.tolist() == [6, 6]
    assert ds["largest_group"].sel(bin="high").item() == "photo0"
    assert ds["largest_group_share"].sel(bin="high").item() == pytest.approx(12 / 22)
    assert ds["makeup_tvd"].item() == pytest.approx(bins["makeup_tvd"].item()) and ds["makeup_tvd"].item() > 0.2
    assert ds.attrs["enough_groups"] == 1
    for suffix in ("", "_image_level"):
        ci = ds["contrast_ci" + suffix].values
        assert ci[0] < ci[1] and ds["region_mean_ci" + suffix].sel(stat="amv").notnull().all()
    width = ds["contrast_ci"].values @ [-1, 1]
    assert width > ds["contrast_ci_image_level"].values @ [-1, 1]  # six groups carry less information than 48 maps


def test_amva_with_one_image_per_group_says_the_two_coincide():
    rng = np.random.default_rng(5)
    mask = face_mask(SIZE * 4, 0.5)
    x = rng.random((12, (SIZE * 4) ** 2))
    ids = np.array([f"face{i}" for i in range(12)])
    maps, bins = as_amva_inputs(x[:6], x[6:], ids[:6], ids[6:], size=SIZE * 4)
    ds = variation(maps, bins, mask, seed=0, n_boot=100, n_perm=99)
    assert ds.attrs["inference"].startswith("every group is one image")
    for name in ("perm_p_value", "perm_ratio_p_value", "region_mean_ci", "contrast_ci"):
        np.testing.assert_array_equal(ds[name].values, ds[name + "_image_level"].values)

"""EDC (dasec edc.py) and ERC (CR-FIQA ERC/erc.py): hand-computed cases and brute force."""

import math

import numpy as np
import pytest
import xarray as xr

from amva.evaluation import best_case_area, edc, erc, erc_threshold, error_versus_discard, pauc

# ----------------------------------------------------------------------------- EDC


@pytest.fixture
def pairs():
    rng = np.random.default_rng(3)
    n = 400
    genuine = rng.random(n) < 0.4
    qa = rng.integers(0, 30, n).astype(float)  # many ties on purpose
    qb = rng.integers(0, 30, n).astype(float)
    quality = np.minimum(qa, qb)
    scores = np.where(genuine, 0.3 + 0.02 * quality + rng.normal(0, 0.15, n), rng.normal(0, 0.1, n))
    return scores, genuine, qa, qb


def hand_edc_pairs():
    """5 genuine pairs (pair quality min = 1, 1, 2, 3, 3) and 2 impostors that must not count."""
    sim = np.array([0.2, 0.8, 0.3, 0.9, 0.1, 0.6, 0.0])
    gen = np.array([1, 1, 1, 1, 1, 0, 0], bool)
    qa = np.array([1.0, 5, 2, 3, 4, 0, 9])
    qb = np.array([2.0, 1, 9, 3, 3, 0, 9])
    return sim, gen, qa, qb


def test_edc_hand_computed_with_ties_and_final_point():
    ds = edc(*hand_edc_pairs(), threshold=0.5, discard_limits=(0.2, 0.4, 0.5, 1.0))
    # errors (sim < 0.5) by quality: q1 {0.2 x, 0.8}, q2 {0.3 x}, q3 {0.9, 0.1 x}
    np.testing.assert_allclose(ds["discard"], [0, 0.4, 0.6, 1])
    np.testing.assert_allclose(ds["error"], [3 / 5, 2 / 3, 1 / 2, 0])
    np.testing.assert_array_equal(ds["kept_genuine"], [5, 3, 2, 0])  # no genuine pair left at the end
    np.testing.assert_array_equal(ds["error_count"], [3, 2, 1, 0])
    np.testing.assert_array_equal(ds["quality_cut"], [1, 2, 3, np.inf])
    pa = [0.6 * 0.2, 0.6 * 0.4, 0.24 + (2 / 3) * 0.1, 0.24 + (2 / 3) * 0.2 + 0.5 * 0.4]
    np.testing.assert_allclose(ds["pauc"], pa)
    best = [0.18 - 0.4**2 / 2, 0.18 - 0.2**2 / 2, 0.18 - 0.1**2 / 2, 0.18]
    np.testing.assert_allclose(ds["best_case_area"], best)
    np.testing.assert_allclose(ds["pauc_minus_best"], np.subtract(pa, best))
    assert ds.attrs["genuine_pairs"] == 5 and ds.attrs["impostor_pairs"] == 2
    assert ds.attrs["threshold_source"] == "threshold" and ds.attrs["starting_error"] == pytest.approx(0.6)


def test_edc_all_equal_quality_is_one_step_to_the_end():
    sim, gen, _, _ = hand_edc_pairs()
    q = np.full(sim.size, 7.0)
    ds = edc(sim, gen, q, q, threshold=0.5)
    np.testing.assert_allclose(ds["discard"], [0, 1])
    np.testing.assert_allclose(ds["error"], [0.6, 0])
    np.testing.assert_allclose(ds["pauc"], [0.12, 0.18])  # flat at 0.6 up to each limit


def test_edc_nan_quality_is_discarded_first():
    sim, gen, qa, qb = hand_edc_pairs()
    qa = qa.copy()
    qa[3] = np.nan  # the 0.9 pair (no error) becomes lowest
    ds = edc(sim, gen, qa, qb, threshold=0.5)
    np.testing.assert_allclose(ds["discard"], [0, 0.2, 0.6, 0.8, 1])
    np.testing.assert_allclose(ds["error"], [3 / 5, 3 / 4, 2 / 2, 1 / 1, 0])
    np.testing.assert_array_equal(ds["quality_cut"], [-np.inf, 1, 2, 3, np.inf])
    assert ds.attrs["nan_quality_genuine_pairs"] == 1


def test_edc_zero_discard_is_plain_fnmr_and_curve_matches_brute_force(pairs):
    scores, genuine, qa, qb = pairs
    ds = edc(scores, genuine, qa, qb, fmr=0.01)
    tau = ds.attrs["threshold"]
    assert tau == np.quantile(scores[~genuine], 0.99)  # linear quantile, as edc.py
    assert ds["error"].values[0] == np.mean(scores[genuine] < tau)
    gq = np.minimum(qa, qb)[genuine]
    assert ds.sizes["discard"] == np.unique(gq).size + 1
    curve = ds.isel(discard=slice(None, -1))
    for cut, err, kept in zip(
        curve["quality_cut"].values, curve["error"].values, curve["kept_genuine"].values, strict=True
    ):
        keep = gq >= cut
        assert kept == keep.sum()
        assert err == pytest.approx(np.mean(scores[genuine][keep] < tau))
    assert ds["error"].values[-2] < ds["error"].values[0]  # quality predicts errors here


def test_edc_threshold_from_starting_error_and_fmr():
    gen_sim = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    imp_sim = np.arange(10) / 10
    sim = np.concatenate([gen_sim, imp_sim])
    gen = np.arange(sim.size) < 5
    q = np.ones(sim.size)
    ds = edc(sim, gen, q, q, starting_error=0.3)
    assert ds.attrs["threshold"] == pytest.approx(0.22)  # linear: 0.2 + 0.2 * (0.3 - 0.2)
    assert ds["error"].values[0] == pytest.approx(0.4)
    ds = edc(sim, gen, q, q, fmr=0.1)
    assert ds.attrs["threshold"] == pytest.approx(0.81)  # quantile 0.9 of 0, 0.1, .., 0.9
    assert ds.attrs["fmr_at_threshold"] == pytest.approx(0.1)
    assert ds.attrs["threshold_source"] == "fmr" and ds.attrs["threshold_target"] == 0.1
    with pytest.raises(ValueError, match="not resolvable with 10 impostor pairs"):
        edc(sim, gen, q, q, fmr=0.05)
    with pytest.raises(ValueError, match="exactly one"):
        edc(sim, gen, q, q, fmr=0.1, threshold=0.3)
    with pytest.raises(ValueError, match="exactly one"):
        edc(sim, gen, q, q)
    with pytest.raises(ValueError, match="no genuine pairs"):
        edc(sim[~gen], gen[~gen], q[~gen], q[~gen], threshold=0.3)


def test_pauc_on_a_hand_made_step_curve():
    discard = np.array([0.0, 0.1, 0.25, 0.5, 1.0])
    error = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
    assert pauc(discard, error, 0.2) == pytest.approx(0.4 * 0.1 + 0.3 * 0.1)
    assert pauc(discard, error, 0.25) == pytest.approx(0.04 + 0.3 * 0.15)  # limit on a point
    assert pauc(discard, error, 0.3) == pytest.approx(0.04 + 0.3 * 0.15 + 0.2 * 0.05)
    assert pauc(discard, error, 0.05) == pytest.approx(0.4 * 0.05)  # inside the first step
    assert pauc(discard, error, 1.0) == pytest.approx(0.04 + 0.045 + 0.05 + 0.05)
    assert pauc(discard, error, 0) == 0
    with pytest.raises(ValueError):
        pauc(discard, error, 1.5)


def test_best_case_area():
    assert best_case_area(0.1, 0.3) == pytest.approx(0.005)  # the whole triangle
    assert best_case_area(0.1, 0.1) == pytest.approx(0.005)
    assert best_case_area(0.5, 0.2) == pytest.approx(0.125 - 0.3**2 / 2)  # a trapezoid
    assert best_case_area(0.0, 0.2) == 0


# ----------------------------------------------------------------------------- ERC


def sims(distance):
    """Similarities whose ERC distance arccos(s)/π is ``distance`` (up to rounding, order kept)."""
    return np.cos(np.pi * np.asarray(distance, dtype=float))


IMP8 = [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
GEN3 = [0.15, 0.35, 0.65]


def test_erc_threshold_closest_fmr_largest_on_ties():
    # candidates and FMR(T) = share of impostors <= T:
    # 0.1 1/8, 0.15 1/8, 0.2 3/8, 0.3 4/8, 0.35 4/8, 0.4 5/8, 0.5 6/8, 0.6 7/8, 0.65 7/8, 0.7 1
    imp, gen = np.array(IMP8), np.array(GEN3)
    assert erc_threshold(gen, imp, 0.125) == (0.15, 0.125)  # equal FMR: largest T, a genuine distance
    assert erc_threshold(gen, imp, 0.25) == (0.2, 0.375)  # 1/8 and 3/8 equally close: largest T
    assert erc_threshold(gen, imp, 0.5) == (0.35, 0.5)
    assert erc_threshold(gen, imp, 0.3) == (0.2, 0.375)  # closest, not "at most"
    assert erc_threshold(gen, imp, 1e-6) == (0.15, 0.125)  # nothing lower than 1/8 exists


def erc_hand_pairs():
    """11 pairs, listed in ascending quality: 4 impostors, 3 genuine + 1 impostor, 3 impostors."""
    distance = [0.1, 0.2, 0.2, 0.3, 0.15, 0.35, 0.65, 0.4, 0.5, 0.6, 0.7]
    gen = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0], bool)
    q = np.arange(11.0)
    return sims(distance), gen, q, q + 100


def test_erc_hand_computed_steps_nan_and_reasons():
    ds = erc(*erc_hand_pairs(), fmrs=(0.125, 0.25, 0.5), step=0.4)
    np.testing.assert_allclose(ds["discard"], [0, 0.4, 0.8])
    np.testing.assert_array_equal(ds["discarded_pairs"], [0, 4, 8])  # int(4.4), int(8.8)
    np.testing.assert_array_equal(ds["kept_genuine"], [3, 3, 0])
    np.testing.assert_array_equal(ds["kept_impostor"], [8, 4, 3])
    # all 11 pairs: the hand-made set of test_erc_threshold_closest_fmr_largest_on_ties
    np.testing.assert_allclose(ds["threshold"][:, 0], [0.15, 0.2, 0.35])
    np.testing.assert_allclose(ds["fmr_achieved"][:, 0], [1 / 8, 3 / 8, 1 / 2])
    np.testing.assert_allclose(ds["fnmr"][:, 0], [1, 2 / 3, 2 / 3])  # share of genuine with distance >= T
    # 4 lowest dropped: impostors 0.4..0.7, genuine as before; 4 × 0.125 < 1 is not resolvable, but the
    # reference still answers: FMR 0 (T 0.15, 0.35) and 1/4 (T 0.4) are equally close, it takes T = 0.4
    assert ds["resolvable"][0, 1] == 0 and ds["threshold"][0, 1] == pytest.approx(0.4)
    assert ds["fnmr"][0, 1] == pytest.approx(1 / 3)  # only 0.65 >= 0.4
    np.testing.assert_allclose(ds["threshold"][1:, 1], [0.4, 0.5])
    np.testing.assert_allclose(ds["fnmr"][1:, 1], [1 / 3, 1 / 3])
    # 8 dropped: 3 impostors, no genuine pair left -> NaN (the reference divides by zero)
    np.testing.assert_array_equal(ds["resolvable"][:, 2], [0, 0, 1])
    assert np.all(np.isnan(ds["fnmr"][:, 2])) and np.isfinite(ds["threshold"][2, 2])
    assert np.all(np.isnan(ds["auc"]))
    np.testing.assert_array_equal(ds["auc_resolved"], [0, 0, 1])  # FMR 0.5 resolves; its AUC is NaN for the genuine
    np.testing.assert_allclose(ds["unresolved_from"], [0.4, 0.8, np.nan])
    reason = ds.attrs["resolution"]
    assert "fmr=0.125: not resolvable (kept impostors × FMR < 1) from discard 0.40, 2 of 3 steps" in reason
    assert "fmr=0.25: not resolvable (kept impostors × FMR < 1) from discard 0.80, 1 of 3 steps" in reason
    assert "1 of 3 steps keep no genuine pair" in reason
    assert "no genuine or no impostor" in ds["fnmr"].attrs["nan_reason"]


def test_erc_all_equal_quality_stable_order_and_trapezoid_auc():
    # equal quality: pairs leave in input order; the first four leave at u = 0.5
    distance = [0.6, 0.7, 0.1, 0.2, 0.15, 0.5, 0.3, 0.4]
    gen = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    q = np.zeros(8)
    ds = erc(sims(distance), gen, q, q, fmrs=(0.5,), step=0.5)
    np.testing.assert_allclose(ds["threshold"][0], [0.2, 0.3])
    np.testing.assert_allclose(ds["fnmr"][0], [0.75, 0.5])
    assert float(ds["auc"][0]) == pytest.approx(0.5 * (0.75 + 0.5) / 2)


def test_erc_discard_count_truncates_like_the_reference():
    rng = np.random.default_rng(0)
    n = 30
    ds = erc(rng.uniform(-1, 1, n), np.arange(n) % 2 == 0, rng.random(n), rng.random(n), fmrs=(0.1,), step=0.3)
    # np.arange(0, 0.98, 0.3)[-1] is 0.8999999999999999 and int(0.8999999999999999 * 30) is 26
    np.testing.assert_array_equal(ds["discarded_pairs"], [0, 9, 18, 26])


def test_erc_default_grid_auc_abscissa_and_the_references_number_where_the_fmr_stops_resolving():
    """2000 pairs, ~1400 impostors: FMR 1e-3 resolves at zero discard but not at 95%; its AUC is still given."""
    rng = np.random.default_rng(1)
    n = 2000
    gen = rng.random(n) < 0.3
    qa, qb = rng.integers(0, 50, n).astype(float), rng.integers(0, 50, n).astype(float)
    sim = np.where(gen, 0.5 + 0.005 * np.minimum(qa, qb) + rng.normal(0, 0.15, n), rng.normal(0, 0.1, n))
    ds = erc(sim, gen, qa, qb, fmrs=(0.1, 1e-2, 1e-3))
    assert ds.sizes["discard"] == 20 and ds["discard"].values[-1] == pytest.approx(0.95)
    x = (100 * np.arange(0, 0.98, 0.05)) / 100  # save_pdf's abscissa, not always the grid bit for bit
    for i in range(3):
        row = ds["fnmr"].values[i]
        assert np.isfinite(row).all()  # every step keeps genuine and impostor pairs
        assert ds["auc"].values[i] == pytest.approx(np.sum(np.diff(x) * (row[1:] + row[:-1]) / 2))
    assert ds["auc_resolved"].values.tolist() == [1, 0, 0]  # 0.1 resolves at every step here
    unresolved = ds["resolvable"].values[2] == 0
    assert not unresolved[0] and unresolved[-1]
    first = ds["discard"].values[np.argmax(unresolved)]
    assert ds["unresolved_from"][2] == first and ds["kept_impostor"].sel(discard=first) < 1000


def brute_force_erc(distance, gen, pair_quality, fmr, u):
    """Straight from the definition: kept pairs, every candidate threshold, closest FMR, largest T on ties."""
    n = distance.size
    kept = np.argsort(pair_quality, kind="stable")[int(u * n) :]
    d, g = distance[kept], gen[kept]
    best = None
    for t in sorted(set(d.tolist())):
        dev = abs(np.mean(d[~g] <= t) - fmr)
        if best is None or dev <= best[0]:
            best = (dev, t)
    t = best[1]
    return t, 1 - np.sum(d[g] < t) / np.sum(g)


def test_erc_matches_brute_force(pairs):
    scores, genuine, qa, qb = pairs
    scores = np.clip(scores, -1, 1)
    ds = erc(scores, genuine, qa, qb, fmrs=(0.05, 0.1), step=0.2)
    distance = np.arccos(scores) / math.pi
    for i, fmr in enumerate((0.05, 0.1)):
        for j, u in enumerate(ds["discard"].values):
            if ds["kept_impostor"].values[j] and ds["kept_genuine"].values[j]:  # resolvable or not
                t, fnmr = brute_force_erc(distance, genuine, np.minimum(qa, qb), fmr, u)
                assert ds["threshold"].values[i, j] == t
                assert ds["fnmr"].values[i, j] == fnmr


# ------------------------------------------------------------------------ workflow


def test_error_versus_discard_dataset_is_netcdf_safe(pairs, tmp_path):
    scores, genuine, qa, qb = pairs
    n = scores.size
    # embeddings whose cosine similarity is the score: unit vectors at angle arccos(score)
    ang = np.arccos(np.clip(scores, -1, 1))
    images_a = [f"a{i}" for i in range(n)]
    images_b = [f"b{i}" for i in range(n)]
    emb = np.concatenate([np.stack([np.ones(n), np.zeros(n)], 1), np.stack([np.cos(ang), np.sin(ang)], 1)])
    embeddings = xr.Dataset({"embedding": (("image", "dim"), emb)}, coords={"image": images_a + images_b})
    quality = xr.Dataset({"quality": ("image", np.concatenate([qa, qb]))}, coords={"image": images_a + images_b})
    pair_ds = xr.Dataset({"a": ("pair", images_a), "b": ("pair", images_b), "genuine": ("pair", genuine)})
    ds = error_versus_discard(pair_ds, embeddings, quality, "fmr", 0.05, (0.2, 0.3))
    assert {"edc_error", "pauc", "pauc_minus_best", "erc_fnmr", "auc"} <= set(ds.data_vars)
    assert ds["edc_error"].dims == ("discard",) and ds["erc_fnmr"].dims == ("fmr", "erc_discard")
    assert ds["pauc"].dims == ("limit",) and ds["auc"].dims == ("fmr",)
    assert ds.attrs["edc_threshold_source"] == "fmr" and ds.attrs["threshold_from"] == "fmr"
    assert ds.attrs["edc_status"] == ds.attrs["erc_status"] == "computed"
    ref = edc(np.clip(scores, -1, 1), genuine, qa, qb, fmr=0.05)
    np.testing.assert_allclose(ds["edc_error"], ref["error"], atol=1e-12)
    for name in ds.variables:
        for value in ds[name].attrs.values():
            assert isinstance(value, str | int | float), (name, value)
    for value in ds.attrs.values():
        assert isinstance(value, str | int | float), value
    ds.to_netcdf(tmp_path / "evd.nc", engine="netcdf4")
    back = xr.load_dataset(tmp_path / "evd.nc", engine="netcdf4")
    np.testing.assert_array_equal(back["erc_fnmr"], ds["erc_fnmr"])
    with pytest.raises(ValueError, match="threshold_from = 'far'"):
        error_versus_discard(pair_ds, embeddings, quality, "far", 0.05, (0.2,))


def evd_inputs(genuine, n_images=12, seed=0):
    """Pairs of random unit embeddings and qualities; ``genuine`` labels the pairs."""
    rng = np.random.default_rng(seed)
    images = [f"i{k}" for k in range(n_images)]
    embeddings = xr.Dataset({"embedding": (("image", "f"), rng.normal(size=(n_images, 8)))}, coords={"image": images})
    quality = xr.Dataset({"quality": ("image", rng.random(n_images))}, coords={"image": images})
    a, b = rng.integers(0, n_images, (2, len(genuine)))
    pairs = xr.Dataset(
        {"a": ("pair", np.array(images)[a]), "b": ("pair", np.array(images)[b]), "genuine": ("pair", genuine)}
    )
    return pairs, embeddings, quality


def test_datasets_the_protocols_cannot_use_say_why_and_keep_the_variables():
    """No genuine pairs (one image per person): neither curve; no impostors: no ERC; too few impostors
    for the FMR: no EDC, while the ERC still gives the reference's numbers."""
    full = set(error_versus_discard(*evd_inputs(np.arange(300) % 3 == 0), "fnmr", 0.1).data_vars)
    ds = error_versus_discard(*evd_inputs(np.zeros(40, bool)), "fmr", 0.1)
    assert ds.attrs["edc_status"] == ds.attrs["erc_status"] == "not computed: no genuine pairs"
    assert set(ds.data_vars) == full and ds["pauc"].isnull().all() and ds["auc"].isnull().all()
    ds = error_versus_discard(*evd_inputs(np.ones(40, bool)), "fnmr", 0.1)
    assert ds.attrs["edc_status"] == "computed" and ds.attrs["erc_status"] == "not computed: no impostor pairs"
    assert ds["pauc"].notnull().all() and ds["erc_fnmr"].isnull().all()
    ds = error_versus_discard(*evd_inputs(np.arange(78) < 15), "fmr", 0.01)  # 63 impostor pairs
    assert ds.attrs["edc_status"] == (
        "not computed: FMR 0.01 is not resolvable with 63 impostor pairs (needs >= 100); "
        "use a larger FMR or a starting FNMR"
    )
    assert ds["pauc"].isnull().all() and ds.attrs["erc_status"] == "computed"
    first = ds["erc_fnmr"].sel(fmr=1e-2).isel(erc_discard=0)
    assert np.isfinite(first) and ds["erc_resolvable"].sel(fmr=1e-2).isel(erc_discard=0) == 0


def test_comparison_scores_are_the_same_in_chunks_and_name_a_missing_image(monkeypatch):
    import amva.evaluation as evaluation
    from amva.evaluation import comparison_scores

    rng = np.random.default_rng(0)
    ids = np.array([f"p{k}/img.jpg" for k in range(40)])
    emb = xr.DataArray(rng.normal(size=(40, 16)).astype(np.float32), coords={"image": ids}, dims=("image", "feature"))
    a, b = rng.choice(ids, 1000), rng.choice(ids, 1000)
    whole = comparison_scores(emb, a, b)
    unit = emb.values.astype(np.float64) / np.linalg.norm(emb.values.astype(np.float64), axis=1, keepdims=True)
    where = {name: i for i, name in enumerate(ids)}
    expected = [unit[where[x]] @ unit[where[y]] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(whole, expected, rtol=0, atol=1e-12)
    monkeypatch.setattr(evaluation, "PAIR_CHUNK", 7)  # 143 chunks, the last one short
    np.testing.assert_array_equal(comparison_scores(emb, a, b), whole)
    with pytest.raises(KeyError, match="1 pair images have no embedding, e.g. 'nobody.jpg'"):
        comparison_scores(emb, np.array(["nobody.jpg"]), ids[:1])

"""EDC against a brute-force reference and the definitions it rests on."""

import numpy as np
import pytest

from amva.evaluation import edc_fnmr, pauc, threshold_at_fmr, threshold_at_fnmr


def brute_force_fnmr(scores, quality, threshold, cut_quality):
    """FNMR of the genuine pairs whose quality is above the discarded level."""
    keep = quality >= cut_quality
    return np.mean(scores[keep] < threshold)


@pytest.fixture
def pairs():
    rng = np.random.default_rng(3)
    n = 400
    genuine = rng.random(n) < 0.4
    quality = rng.integers(0, 30, n).astype(float)  # many ties on purpose
    scores = np.where(genuine, 0.3 + 0.02 * quality + rng.normal(0, 0.15, n), rng.normal(0, 0.1, n))
    return scores, genuine, quality


def test_zero_discard_is_plain_fnmr(pairs):
    scores, genuine, quality = pairs
    tau = threshold_at_fmr(scores[~genuine], 0.01)
    ds = edc_fnmr(scores, genuine, quality, tau)
    assert ds["discard"].values[0] == 0
    assert ds["fnmr"].values[0] == pytest.approx(np.mean(scores[genuine] < tau))


def test_curve_matches_brute_force_and_ties_leave_together(pairs):
    scores, genuine, quality = pairs
    tau = 0.5
    ds = edc_fnmr(scores, genuine, quality, tau)
    gq = quality[genuine]
    assert ds.sizes["discard"] == np.unique(gq).size
    for cut, fnmr, kept in zip(ds["quality_cut"].values, ds["fnmr"].values, ds["kept_pairs"].values, strict=False):
        assert kept == np.sum(gq >= cut)
        assert fnmr == pytest.approx(brute_force_fnmr(scores[genuine], gq, tau, cut))
    assert ds["fnmr"].values[-1] < ds["fnmr"].values[0]  # quality predicts errors here


def test_threshold_at_fmr_is_the_smallest_that_meets_it(pairs):
    scores, genuine, _ = pairs
    imp = scores[~genuine]
    tau = threshold_at_fmr(imp, 0.05)
    assert np.mean(imp >= tau) <= 0.05
    assert np.mean(imp >= np.nextafter(tau, -np.inf)) > 0.05 or tau == imp.min()
    with pytest.raises(ValueError, match="not resolvable"):
        threshold_at_fmr(imp, 1e-4)


def test_threshold_at_fnmr_gives_that_fnmr(pairs):
    scores, genuine, _ = pairs
    tau = threshold_at_fnmr(scores[genuine], 0.1)
    assert np.mean(scores[genuine] < tau) == pytest.approx(0.1, abs=1 / genuine.sum())


def test_pauc_stepwise():
    discard = np.array([0.0, 0.1, 0.25, 0.5])
    error = np.array([0.4, 0.3, 0.2, 0.1])
    assert pauc(discard, error, 0.2) == pytest.approx(0.4 * 0.1 + 0.3 * 0.1)
    assert pauc(discard, error, 0.3) == pytest.approx(0.04 + 0.3 * 0.15 + 0.2 * 0.05)

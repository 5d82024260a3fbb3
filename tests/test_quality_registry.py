"""The FIQA registry, config checks, and the validation/agreement tables."""

import numpy as np
import pytest
import xarray as xr

from amva.bins import bins_dataset
from amva.quality import METHODS, REGISTRY, score
from amva.quality.config import check_entry, fiqa_options
from amva.quality.validation import agreement, severity_validation, spearman


def test_every_method_declares_direction_and_options():
    assert {"serfiq", "embedding_norm", "flip_consistency", "faceqan", "grafiqs", "brisque", "qualityface"} <= set(
        METHODS
    )
    assert set(METHODS["serfiq"].options) >= {"T", "dropout", "seed"}
    assert METHODS["brisque"].higher_is_better is False and not METHODS["brisque"].needs_model
    for record in REGISTRY.values():
        assert record.kind in ("model", "image", "imported")
        imported = record.kind == "imported"
        assert (record.fn is None) == imported and (record.higher_is_better is None) == imported
        assert set(record.inputs) <= set(record.options)
    assert set(METHODS) == {name for name, record in REGISTRY.items() if record.kind != "imported"}


def test_check_entry_names_the_problem():
    check_entry("s", {"method": "serfiq", "model": "sface", "T": 10, "batch_size": 8})
    check_entry("i", {"method": "scores_file", "path": "s.txt", "batch_size": 4, "format": "csv"})
    with pytest.raises(ValueError, match=r"fiqa.s: Tx is not an option of serfiq"):
        check_entry("s", {"method": "serfiq", "model": "sface", "Tx": 10})
    with pytest.raises(ValueError, match="needs an FR model"):
        check_entry("g", {"method": "grafiqs"})
    with pytest.raises(ValueError, match="unknown FIQA method"):
        check_entry("x", {"method": "nope"})
    with pytest.raises(ValueError, match=r"fiqa.i: colum is not an option of scores_file"):
        check_entry("i", {"method": "scores_file", "path": "s.txt", "colum": "q"})
    with pytest.raises(ValueError, match=r"fiqa.i: scores_file needs path"):
        check_entry("i", {"method": "scores_file"})


def test_fiqa_options_are_the_records_with_the_top_level_seed():
    spec = {"method": "serfiq", "model": "sface", "T": 10, "batch_size": 4}
    assert fiqa_options(spec, 3) == {"T": 10, "dropout": 0.5, "seed": 3}
    assert fiqa_options({**spec, "seed": 5}, 3)["seed"] == 5
    assert fiqa_options({"method": "sharpness", "batch_size": 4}, 3) == {"margin": 0.5}


def test_score_computes_only_what_it_can():
    faces = xr.Dataset({"pixels": (("image", "y", "x", "channel"), np.zeros((1, 112, 112, 3), np.uint8))})
    faces = faces.assign_coords(image=["a"])
    with pytest.raises(ValueError, match="imported from a score file"):
        score(faces, "scores_file", None, None)
    with pytest.raises(ValueError, match="needs an FR model"):
        score(faces, "serfiq", None, None)
    with pytest.raises(ValueError, match="rounded is not an option of sharpness"):
        score(faces, "sharpness", None, None, {"rounded": True})


def test_spearman_against_hand_ranks():
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 40.0])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1.0)
    # ties take average ranks: x ranks (1, 2.5, 2.5, 4), y ranks (1, 2, 3, 4)
    x_r, y_r = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4.0])
    assert spearman(np.array([1, 2, 2, 3.0]), np.array([1, 2, 3, 4.0])) == pytest.approx(np.corrcoef(x_r, y_r)[0, 1])
    assert np.isnan(spearman(np.ones(4), np.arange(4.0)))


def _quality(values, ids):
    return xr.Dataset({"quality": xr.DataArray(np.asarray(values, float), coords={"image": ids}, dims="image")})


def test_validation_and_agreement_tables():
    pairs = [
        ("s", "none", 0),
        ("s", "blur", 1),
        ("s", "blur", 2),
        ("s", "noise", 1),
        ("s", "noise", 2),
        ("t", "none", 0),
    ]
    ids = [f"{s}/{k}/{v}" for s, k, v in pairs]
    faces = xr.Dataset(
        coords={
            "image": ids,
            "severity": ("image", [0, 1, 2, 1, 2, 0]),
            "degradation": ("image", ["none", "blur", "blur", "noise", "noise", "none"]),
        }
    )
    good = _quality([9, 7, 5, 8, 6, 10], ids)  # falls with severity everywhere
    blind = _quality([5, 5.5, 6, 4, 3, 5.2], ids)
    table = severity_validation(faces, {"good": good, "blind": blind}).set_index(["fiqa", "degradation"])
    assert table.loc[("good", "all"), "spearman"] < -0.8
    assert table.loc[("good", "blur"), "images"] == 4
    assert table.loc[("blind", "blur"), "spearman"] > 0
    bins = {n: bins_dataset(q, "high_low", k=2) for n, q in {"good": good, "same": good, "blind": blind}.items()}
    agree = agreement({"good": good, "same": good, "blind": blind}, bins).set_index(["fiqa_a", "fiqa_b"])
    assert agree.loc[("good", "same"), "spearman"] == pytest.approx(1.0)
    assert agree.loc[("good", "same"), "high_overlap"] == 1.0
    high_good = {ids[0], ids[5]}
    high_blind = {ids[2], ids[1]}
    expected = len(high_good & high_blind) / len(high_good | high_blind)
    assert agree.loc[("good", "blind"), "high_overlap"] == pytest.approx(expected)

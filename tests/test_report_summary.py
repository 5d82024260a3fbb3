"""The report's front page and figure options, on the result files of the shared tiny run."""

import hashlib
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from amva.io import read_dataset
from amva.report.maps import CELL, GALLERY_COLUMNS, HEADER, deviation_gallery, stat_panel
from amva.report.summary import (
    findings,
    front_table,
    holm,
    makeup_warnings,
    rejected_counts,
    run_provenance,
    summary_html,
    summary_table,
)

ANALYSES = [
    ("tiny", "sface", cam, fiqa)
    for cam, fiqas in (("gradcam", ("serfiq", "brisque", "sharpness", "imported")), ("gradcam_binned", ("serfiq",)))
    for fiqa in fiqas
]


@pytest.fixture(scope="module")
def files(tiny_run):
    res = tiny_run / "results/tiny/sface"
    amva = {key: read_dataset(res / f"{key[2]}/variation/{key[3]}.nc") for key in ANALYSES}
    edc = {
        ("tiny", "sface", f): read_dataset(res / f"edc/{f}.nc") for f in ("serfiq", "brisque", "sharpness", "imported")
    }
    return amva, edc


def test_summary_rows_are_the_result_files_numbers(files, tiny_run):
    amva, edc = files
    table = summary_table(amva, edc)
    assert len(table) == len(ANALYSES)
    for (_, _, cam, fiqa), row in zip(ANALYSES, table.to_dict("records"), strict=True):
        ds, ev = amva[("tiny", "sface", cam, fiqa)], edc[("tiny", "sface", fiqa)]
        assert (row["cam"], row["fiqa"], row["bins"]) == (cam, fiqa, "high 5 / low 5")
        assert (row["group_by"], row["high_groups"], row["low_groups"], row["makeup_tvd"]) == ("source", 5, 5, 0.0)
        assert row["high_largest_share"] == 0.2 and row["enough_groups"] == 1 and row["perm_groups"] == 5
        amv = ds["maps"].sel(stat="amv").values
        outside = ~ds["face_mask"].values.astype(bool)
        for name, b in (("high", 0), ("low", 1)):  # ratio recomputed from the AM-V maps and the mask
            expected = amv[b][outside].mean() / amv[b][~outside].mean()
            assert row[f"ratio_{name}"] == pytest.approx(expected, rel=1e-5)
            assert row[f"outside_amv_{name}"] == pytest.approx(amv[b][outside].mean(), rel=1e-5)
            for column in ("ratio", "outside_amv"):
                assert row[f"{column}_{name}_lower"] <= row[f"{column}_{name}"] <= row[f"{column}_{name}_upper"]
        assert 0 < row["outside_amv_p_value"] <= 1 and row["outside_amv_p_value"] == ds["perm_p_value"].item()
        assert row["outside_amv_p_value_image_level"] == ds["perm_p_value_image_level"].item()
        assert row["contrast_lower"] <= row["contrast"] <= row["contrast_upper"]
        assert row["contrast"] == pytest.approx(
            row["outside_amv_low"] - row["outside_amv_high"], abs=1e-5
        )  # f64 vs f32
        assert row["ratio_p_value"] == ds["perm_ratio_p_value"].item()
        assert row["edc_pauc_0.2"] == ev["pauc"].sel(limit=0.2).item()
        assert 0 <= row["edc_pauc_0.2"] <= row["edc_pauc_0.3"]  # the pAUC grows with the limit
    # the same analysis of two CAMs shares the FIQA's EDC numbers
    serfiq = table[table["fiqa"] == "serfiq"]
    assert serfiq["edc_pauc_0.2"].nunique() == 1 and serfiq["cam"].tolist() == ["gradcam", "gradcam_binned"]
    # the tiny set's 112 impostor pairs cannot resolve FMR 1e-4: the reference's number, flagged
    assert (table["erc_resolved_fmr_0.0001"] == 0).all()
    assert (table["edc_status"] == "computed").all()
    # the workflow's rule wrote the same table
    keys = ["dataset", "model", "cam", "fiqa"]
    written = pd.read_csv(tiny_run / "results/report/summary.csv").set_index(keys).sort_index()
    pd.testing.assert_frame_equal(written, table.set_index(keys).sort_index(), check_dtype=False, rtol=1e-12)


def test_front_table_formats_intervals_and_marks_small_p(files):
    amva, edc = files
    table = summary_table(amva, edc)
    table.loc[0, "ratio_p_value"] = 0.01
    table.loc[1, "ratio_p_value"] = 0.5
    table.loc[2, ["enough_groups", "high_groups"]] = (0, 3)
    front = front_table(table)
    assert front.loc[0, "p (ratio LOW > HIGH), grouped"] == "<b>0.01</b> (5 groups)"
    assert front.loc[1, "p (ratio LOW > HIGH), grouped"] == "0.5 (5 groups)"
    assert front.loc[2, "p (outside LOW > HIGH), grouped"] == "too few groups (3 / 5 &lt; 5)"
    assert front.loc[0, "groups HIGH / LOW"] == "5 / 5" and front.loc[0, "make-up TVD"] == "0.00"
    value, lower, upper = map(float, re.findall(r"[\d.]+", front.loc[0, "outside AM-V LOW [95% CI]"]))
    assert lower <= value <= upper and value == pytest.approx(table.loc[0, "outside_amv_low"], abs=1e-4)
    assert all(v == "n/a" or v.endswith(" †") for v in front["ERC AUC @ FMR 0.0001"])  # flagged, not resolved
    assert front.columns[-1] == "ERC AUC @ FMR 0.0001"


def test_rejected_counts_split_images_and_pairs(tiny_run):
    tiny = pd.read_csv(tiny_run / "results/tiny/rejected.csv")
    lost = pd.DataFrame(
        {
            "id": ["a/broken.jpg", "pair:7", "pair:9", "row:3"],
            "path": ["/x/a/broken.jpg", "/x/pairs.txt", "/x/pairs.txt", "/x/m.csv"],
            "reason": ["cannot decode", "pair dropped: missing image", "pair dropped: x", "manifest line 3: no path"],
        }
    )
    counts = rejected_counts({"tiny": tiny, "other": lost}, {"tiny": 20, "other": 0}).set_index("dataset")
    assert counts.loc["tiny"].tolist() == [20, 0, 0, "analysed"]  # the demo ladder uses every photo
    assert counts.loc["other", ["images_used", "rejected_images", "rejected_pairs"]].tolist() == [0, 2, 2]
    assert counts.loc["other", "status"].startswith("skipped: no usable image")
    with pytest.raises(ValueError, match="'bad'.*reason"):
        rejected_counts({"bad": lost.drop(columns="reason")}, {"bad": 1})


def test_findings_and_warnings_are_made_from_the_numbers(files):
    table = summary_table(*files)
    sentences = findings(table)
    assert len(sentences) == 2  # one per (dataset, model, CAM): gradcam, gradcam_binned
    part = table[table["cam"] == "gradcam"]
    higher = int((part["contrast"] > 0).sum())
    significant = int(((part["enough_groups"] == 1) & (part["outside_amv_p_value"] < 0.05)).sum())
    image_level = int((part["outside_amv_p_value_image_level"] < 0.05).sum())
    assert f"exceeds HIGH's for {higher} of 4 FIQA methods" in sentences[0]
    assert f"p &lt; 0.05 for {significant} of the 4 with at least 5 groups" in sentences[0]
    assert f"Ignoring the groups, {image_level} of 4 would reach" in sentences[0]
    assert makeup_warnings(table) == []  # matched bins: the same photos in HIGH and LOW
    skewed = table.assign(makeup_tvd=np.where(table["fiqa"] == "brisque", 0.5, 0.0))
    (warning,) = makeup_warnings(skewed)  # once per (dataset, FIQA), not per CAM
    assert "brisque" in warning and "TVD 0.50 over source" in warning
    flat = table.assign(
        high_ties=np.where(table["fiqa"] == "sharpness", table["high_size"], 0),
        low_ties=np.where(table["fiqa"] == "sharpness", table["low_size"], 0),
    )
    (tied,) = makeup_warnings(flat)
    assert "sharpness" in tied and "every binned image is tied and the split is arbitrary" in tied
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])


def test_provenance_lists_what_made_the_results(files):
    amva, edc = files
    config = {"seed": 0, "bins": {"k": 4}}
    prov = run_provenance([*amva.values(), *edc.values()], config).set_index("item")["value"]
    versions = json.loads(next(iter(amva.values())).attrs["amva_versions"])
    assert prov["amva"] == versions["amva"] and prov["torch"] == versions["torch"]
    assert prov["git commit"] == next(iter(amva.values())).attrs["amva_git_commit"]
    assert prov["config sha256"] == hashlib.sha256(b'{"bins": {"k": 4}, "seed": 0}').hexdigest()
    first, last = prov["results created (UTC)"].split(" … ")
    assert first <= last
    other = next(iter(edc.values())).copy()
    other.attrs["amva_git_commit"] = "0" * 40
    mixed = run_provenance([*amva.values(), other], config).set_index("item")["value"]
    assert mixed["git commit"].endswith(", " + "0" * 40)  # results from two commits: both named
    alone = run_provenance([], config).set_index("item")["value"]  # every dataset skipped: this process's own
    assert alone["config sha256"] == prov["config sha256"] and alone["results created (UTC)"] == "no result files"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_summary_html_is_self_contained_and_escaped(files):
    amva, edc = files
    table = summary_table(amva, edc)
    table.loc[0, "dataset"] = "<script>x</script>"
    rejected = rejected_counts({"tiny": pd.DataFrame(columns=["id", "reason"])}, {"tiny": 20})
    prov = run_provenance(list(amva.values()), {})
    parser = _Collect()
    page = summary_html(table, rejected, prov)
    parser.feed(page)
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and "<script>x</script>" in "".join(parser.text)
    assert not [a for _, attrs in parser.tags for k, a in attrs.items() if k in ("src", "href")]
    assert tags.count("table") == tags.count("caption") == 3
    assert tags.count("tr") == (1 + len(table)) + (1 + 1) + (1 + len(prov))
    assert "exceeds HIGH's for" in page and tags.count("li") >= 2  # the findings


def test_colormap_and_gallery_options(files, tiny_run, monkeypatch):
    amva, _ = files
    ds = amva[("tiny", "sface", "gradcam", "serfiq")]
    faces = read_dataset(tiny_run / "results/tiny/faces.nc")
    viridis, magma = stat_panel(ds, faces, "viridis"), stat_panel(ds, faces, "magma")
    assert viridis.shape == magma.shape == (3 * (HEADER + CELL), 5 * CELL, 3)
    face_column = np.s_[HEADER : 2 * HEADER + CELL, :CELL]
    np.testing.assert_array_equal(viridis[face_column], magma[face_column])  # the mean face is not colour-mapped
    assert np.abs(viridis[:, CELL:].astype(int) - magma[:, CELL:]).mean() > 10
    with pytest.raises(ValueError, match="report.colormap = 'rainbow'"):
        stat_panel(ds, faces, "rainbow")
    low = int(ds["bin_size"].sel(bin="low"))
    assert deviation_gallery(ds, faces, 2).shape == (HEADER + CELL, 2 * CELL, 3)
    assert deviation_gallery(ds, faces, GALLERY_COLUMNS + 4).shape == (HEADER + CELL, low * CELL, 3)
    monkeypatch.setattr("amva.report.maps.GALLERY_COLUMNS", 3)  # 5 tiles: a second row of 2, padded white
    grid = deviation_gallery(ds, faces, low)
    assert grid.shape == (2 * (HEADER + CELL), 3 * CELL, 3) and (grid[HEADER + CELL :, (low - 3) * CELL :] == 255).all()
    with pytest.raises(ValueError, match="report.gallery = 0"):
        deviation_gallery(ds, faces, 0)

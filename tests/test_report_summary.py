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
from amva.report.summary import front_table, rejected_counts, run_provenance, summary_html, summary_table

ANALYSES = [
    ("tiny", "sface", cam, fiqa)
    for cam, fiqas in (("gradcam", ("serfiq", "brisque", "sharpness", "imported")), ("gradcam_binned", ("serfiq",)))
    for fiqa in fiqas
]


@pytest.fixture(scope="module")
def files(tiny_run):
    res = tiny_run / "results/tiny/sface"
    amva = {key: read_dataset(res / f"{key[2]}/amva/{key[3]}.nc") for key in ANALYSES}
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
        assert (row["cam"], row["fiqa"], row["bins"]) == (cam, fiqa, "high 4 / low 4")
        amv = ds["maps"].sel(stat="amv").values
        outside = ~ds["face_mask"].values.astype(bool)
        for name, b in (("high", 0), ("low", 1)):  # ratio recomputed from the AM-V maps and the mask
            expected = amv[b][outside].mean() / amv[b][~outside].mean()
            assert row[f"ratio_{name}"] == pytest.approx(expected, rel=1e-5)
            assert row[f"outside_amv_{name}"] == pytest.approx(amv[b][outside].mean(), rel=1e-5)
            for column in ("ratio", "outside_amv"):
                assert row[f"{column}_{name}_lower"] <= row[f"{column}_{name}"] <= row[f"{column}_{name}_upper"]
        assert 0 < row["outside_amv_p_value"] <= 1 and row["outside_amv_p_value"] == ds["perm_p_value"].item()
        assert row["ratio_p_value"] == ds["perm_ratio_p_value"].item()
        assert row["edc_pauc_0.2"] == ev["pauc"].sel(limit=0.2).item()
        assert 0 <= row["edc_pauc_0.2"] <= row["edc_pauc_0.3"]  # the pAUC grows with the limit
    # the same analysis of two CAMs shares the FIQA's EDC numbers
    serfiq = table[table["fiqa"] == "serfiq"]
    assert serfiq["edc_pauc_0.2"].nunique() == 1 and serfiq["cam"].tolist() == ["gradcam", "gradcam_binned"]
    # the tiny set's impostor pairs cannot resolve FMR 1e-4: NaN, never a number
    assert table["erc_auc_fmr_0.0001"].isna().all()
    # the workflow's rule wrote the same table
    keys = ["dataset", "model", "cam", "fiqa"]
    written = pd.read_csv(tiny_run / "results/report/summary.csv").set_index(keys).sort_index()
    pd.testing.assert_frame_equal(written, table.set_index(keys).sort_index(), check_dtype=False, rtol=1e-12)


def test_front_table_formats_intervals_and_marks_small_p(files):
    amva, edc = files
    table = summary_table(amva, edc)
    table.loc[0, "ratio_p_value"] = 0.01
    front = front_table(table)
    assert front.loc[0, "p (ratio LOW > HIGH)"] == "<b>0.01</b>"
    assert "<b>" not in front.loc[1, "p (ratio LOW > HIGH)"]
    value, lower, upper = map(float, re.findall(r"[\d.]+", front.loc[0, "outside AM-V LOW [95% CI]"]))
    assert lower <= value <= upper and value == pytest.approx(table.loc[0, "outside_amv_low"], abs=1e-4)
    assert set(front["ERC AUC @ FMR 0.0001"]) == {"n/a"}
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
    counts = rejected_counts({"tiny": tiny, "other": lost}).set_index("dataset")
    assert counts.loc["tiny"].tolist() == [0, 0]  # the demo ladder uses every photo
    assert counts.loc["other"].tolist() == [2, 2]
    with pytest.raises(ValueError, match="'bad'.*reason"):
        rejected_counts({"bad": lost.drop(columns="reason")})


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
    with pytest.raises(ValueError, match="no result files"):
        run_provenance([], config)


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
    rejected = pd.DataFrame({"dataset": ["tiny"], "rejected_images": [0], "rejected_pairs": [0]})
    prov = run_provenance(list(amva.values()), {})
    parser = _Collect()
    parser.feed(summary_html(table, rejected, prov))
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and "<script>x</script>" in "".join(parser.text)
    assert not [a for _, attrs in parser.tags for k, a in attrs.items() if k in ("src", "href")]
    assert tags.count("table") == tags.count("caption") == 3
    assert tags.count("tr") == (1 + len(table)) + (1 + 1) + (1 + len(prov))


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
    monkeypatch.setattr("amva.report.maps.GALLERY_COLUMNS", 3)  # 4 tiles: a second row, padded white
    grid = deviation_gallery(ds, faces, low)
    assert grid.shape == (2 * (HEADER + CELL), 3 * CELL, 3) and (grid[HEADER + CELL :, CELL:] == 255).all()
    with pytest.raises(ValueError, match="report.gallery = 0"):
        deviation_gallery(ds, faces, 0)

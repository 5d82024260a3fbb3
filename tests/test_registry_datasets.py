"""Each dataset format is declared once, as a record next to its reader: the schema, config/README.md,
the build and the workflow's branching follow the records, and a new format is one record."""

import cv2
import numpy as np
import pytest
from registry_checks import check_schema, entry_schema, readme_rows

from amva.datasets.build import DatasetBuild, build_dataset
from amva.datasets.common import Entry, Listing, load_entries
from amva.datasets.folder import ROOT
from amva.datasets.format import DatasetFormat
from amva.datasets.packaged import SETS
from amva.datasets.registry import FORMATS, photo_sets

DATASETS = entry_schema("datasets")
# keys every format takes: Options.from_spec's, and the grouping label and bins of the analysis
SHARED = {"format", "aligned", "limit", "max_pixels", "color_order", "max_impostor_pairs", "group", "bins"}


def test_the_schema_names_every_format_and_each_ones_keys():
    assert DATASETS["properties"]["format"]["enum"] == list(FORMATS)
    own = {key for fmt in FORMATS.values() for key in fmt.options}
    assert set(DATASETS["properties"]) == SHARED | own, "each schema key is a shared one or a format's own"
    assert not SHARED & own


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_has_its_keys_in_the_schema(name):
    check_schema(FORMATS[name], "datasets", "format")


def test_the_schema_and_the_readme_say_each_formats_defaults():
    aligned, group = DATASETS["properties"]["aligned"], DATASETS["properties"]["group"]
    rows = readme_rows("datasets")
    for name, fmt in FORMATS.items():
        assert f"`{name}`: {fmt.meaning}" in rows["format"], name
        if fmt.aligned:
            assert f"{name}: true" in aligned["description"] and f"`true` for {name}" in rows["aligned"], name
        if fmt.group != "identity":
            assert name in group["description"] and f"`{fmt.group}` for the {name}" in rows["group"], name
    assert SHARED | {key for fmt in FORMATS.values() for key in fmt.options} <= set(rows)


def test_the_records_say_what_the_workflow_branches_on():
    lfw = {"format": "lfw", "root": "/data/lfw", "pairs": "/data/pairs.txt"}
    assert FORMATS["lfw"].inputs(lfw) == ["/data/lfw", "/data/pairs.txt"]
    assert FORMATS["manifest"].inputs({"path": "m.csv", "root": "r"}) == ["m.csv", "r"]
    assert FORMATS["demo"].inputs({}) == [] and FORMATS["demo"].photo_set({}) == "demo"
    assert FORMATS["packaged"].inputs({"set": "wild", "sources": "s"}) == ["s"]
    assert FORMATS["packaged"].photo_set({"set": "wild"}) == "wild"
    assert list(photo_sets()) == ["demo", *SETS]
    assert FORMATS["insightface_bin"].prealigned({}) and not FORMATS["insightface_bin"].prealigned({"aligned": False})
    assert not FORMATS["folder"].prealigned({}) and FORMATS["folder"].prealigned({"aligned": True})
    assert FORMATS["demo"].group == "source" and FORMATS["folder"].group == "identity"


def test_an_unknown_format_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="format 'nope' is not supported; use one of demo, folder, lfw"):
        DatasetBuild({"format": "nope"}, tmp_path)


def read_crops(root, spec, opts):
    """Every PNG in one folder, each its own identity."""
    return Listing(load_entries([Entry(p.name, p.stem, p) for p in sorted(root.glob("*.png"))], opts), [])


def test_a_new_format_is_one_record(tmp_path, monkeypatch):
    """A record with a reader is all the build needs; ``aligned`` makes its crops pass through undetected."""
    rng = np.random.default_rng(0)
    for name in "abc":
        cv2.imwrite(str(tmp_path / f"{name}.png"), rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
    crops = DatasetFormat("crops", "112x112 crops in one folder", read_crops, options={"root": ROOT}, aligned=True)
    monkeypatch.setitem(FORMATS, "crops", crops)
    spec = {"format": "crops", "root": str(tmp_path)}
    faces, pairs, rejected = build_dataset(spec, crops.inputs(spec))
    assert list(faces["image"].values) == ["a.png", "b.png", "c.png"] and (faces["faces_found"] == -1).all()
    assert pairs.attrs["impostor_pairs"] == 3 and rejected.empty

"""The folder layout on real photos: faces aligned, bad files reported, aligned input kept."""

import shutil

import cv2
import numpy as np
import pytest
import xarray as xr

from amva.datasets.align import ARCFACE_TEMPLATE
from amva.datasets.build import DatasetBuild, build_dataset
from amva.io import read_dataset
from amva.stream import ChunkedWriter


@pytest.fixture
def root(tmp_path, demo_sources):
    root = tmp_path / "root"
    for identity, names in {"obama": ["obama", "obama2"], "biden": ["biden"]}.items():
        (root / identity).mkdir(parents=True)
        for name in names:
            shutil.copy(demo_sources[name], root / identity / demo_sources[name].name)
    (root / "biden" / "broken.jpg").write_bytes(demo_sources["biden"].read_bytes()[:300])
    (root / "biden" / "notes.txt").write_text("not an image")
    cv2.imwrite(str(root / "biden" / "wall.png"), np.full((300, 200, 3), 128, np.uint8))
    shutil.copy(demo_sources["astronaut"], root / "stray.png")
    return root


def test_folder_reads_faces_and_reports_every_bad_file(root):
    faces, pairs, rejected = build_dataset({"format": "folder"}, root)
    assert sorted(faces["image"].values) == ["biden/biden.jpg", "obama/obama.jpg", "obama/obama2.jpg"]
    assert faces["identity"].sel(image="obama/obama2.jpg").item() == "obama"
    assert int(pairs["genuine"].sum()) == 1 and pairs.sizes["pair"] == 3
    assert np.abs(faces["landmarks"].values - ARCFACE_TEMPLATE).max() < 7
    reasons = dict(zip(rejected["id"], rejected["reason"], strict=True))
    assert set(reasons) == {"biden/broken.jpg", "biden/notes.txt", "biden/wall.png", "stray.png"}
    assert "cannot read image" in reasons["biden/broken.jpg"]
    assert "no face found" in reasons["biden/wall.png"]
    assert "suffix" in reasons["biden/notes.txt"]
    assert "identity" in reasons["stray.png"]


def test_aligned_input_passes_through_unchanged(root, tmp_path):
    faces, _, _ = build_dataset({"format": "folder"}, root)
    aligned = tmp_path / "aligned"
    for image_id, pixels in zip(faces["image"].values, faces["pixels"].values, strict=True):
        out = aligned / image_id.replace(".jpg", ".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(aligned / "obama" / "small.png"), np.zeros((100, 100, 3), np.uint8))
    again, _, rejected = build_dataset({"format": "folder", "aligned": True}, aligned)
    np.testing.assert_array_equal(again["pixels"].values, faces["pixels"].values)
    np.testing.assert_allclose(again["landmarks"].values[0], ARCFACE_TEMPLATE)
    assert rejected["id"].tolist() == ["obama/small.png"] and "100x100" in rejected["reason"].item()


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        build_dataset({"format": "folder"}, tmp_path / "nope")


def test_faces_are_read_as_they_are_written(root, tmp_path):
    """Chunks of 2 streamed to faces.nc equal the one-chunk build; a file is read only when its chunk is due."""
    faces, pairs, _ = build_dataset({"format": "folder"}, root)

    def stream(build, path, after_each=lambda: None):
        sizes = []
        with ChunkedWriter(path, {"dataset": "x"}) as out:
            for chunk in build.chunks(size=2):
                sizes.append(chunk.sizes["image"])
                out.append(chunk)
                after_each()
        return sizes, read_dataset(path)

    sizes, streamed = stream(DatasetBuild({"format": "folder"}, root), tmp_path / "all.nc")
    assert sizes == [2, 1] and streamed.attrs["align_template"] == "arcface112"
    xr.testing.assert_identical(streamed.drop_attrs(deep=False), faces.drop_attrs(deep=False))
    later = DatasetBuild({"format": "folder"}, root)
    sizes, streamed = stream(later, tmp_path / "cut.nc", (root / "obama" / "obama2.jpg").unlink)
    assert sizes == [2] and streamed["image"].values.tolist() == ["biden/biden.jpg", "obama/obama.jpg"]
    assert "cannot read image" in later.rejected().set_index("id").loc["obama/obama2.jpg", "reason"]
    assert later.pairs().sizes["pair"] == 1 and pairs.sizes["pair"] == 3

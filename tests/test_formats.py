"""Every format reads a fixture built from the demo photos; same images → same pixels."""

import pickle
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from amva.datasets.align import FaceDetector, read_rgb
from amva.datasets.build import DatasetBuild, build_dataset
from amva.io import read_dataset

# LFW-style name → demo photos, in image-number order
PEOPLE = {"Obama": ["obama", "obama2", "obama3"], "Biden": ["biden"], "Collins": ["astronaut"]}
IDS = [f"{name}/{name}_{i + 1:04d}.jpg" for name, photos in PEOPLE.items() for i in range(len(photos))]
PAIRS_10FOLD = "2\t1\nObama\t1\t2\nObama\t1\tBiden\t1\nObama\t2\t3\nObama\t3\tCollins\t1\n"
EXPECTED_PAIRS = [
    ("Obama/Obama_0001.jpg", "Obama/Obama_0002.jpg", True),
    ("Obama/Obama_0001.jpg", "Biden/Biden_0001.jpg", False),
    ("Obama/Obama_0002.jpg", "Obama/Obama_0003.jpg", True),
    ("Obama/Obama_0003.jpg", "Collins/Collins_0001.jpg", False),
]


@pytest.fixture(scope="module")
def lfw_root(tmp_path_factory, demo_sources):
    """root/<name>/<name>_<NNNN>.jpg (astronaut keeps its PNG bytes under a .jpg name: content decides)."""
    root = tmp_path_factory.mktemp("lfw") / "lfw"
    for name, photos in PEOPLE.items():
        (root / name).mkdir(parents=True)
        for i, photo in enumerate(photos):
            shutil.copy(demo_sources[photo], root / name / f"{name}_{i + 1:04d}.jpg")
    (root / "pairs.txt").write_text(PAIRS_10FOLD)
    return root


@pytest.fixture(scope="module")
def reference(lfw_root):
    """The folder format on the same tree: the detection path every other format is compared to."""
    faces, _pairs, rejected = build_dataset({"format": "folder", "root": str(lfw_root)}, lfw_root)
    assert rejected["id"].tolist() == ["pairs.txt"]
    assert faces["image"].values.tolist() == sorted(IDS)
    assert (faces["faces_found"].values >= 1).all()
    return faces


def _same_faces(faces, reference, ids=None, rename=None):
    rename = rename or {}
    ids = ids if ids is not None else faces["image"].values.tolist()
    for image_id in ids:
        np.testing.assert_array_equal(
            faces["pixels"].sel(image=image_id).values,
            reference["pixels"].sel(image=rename.get(image_id, image_id)).values,
            err_msg=image_id,
        )


def _pair_tuples(pairs, rename=None):
    rename = rename or {}
    return [
        (rename.get(a, a), rename.get(b, b), bool(g))
        for a, b, g in zip(pairs["a"].values, pairs["b"].values, pairs["genuine"].values, strict=True)
    ]


@pytest.mark.parametrize("header", ["10fold", "flat"])
def test_lfw_reads_given_pairs_and_only_their_images(lfw_root, reference, header, tmp_path):
    pairs_file = lfw_root / "pairs.txt"
    if header == "flat":
        pairs_file = tmp_path / "pairsDevTest.txt"
        pairs_file.write_text("2\n" + "".join(PAIRS_10FOLD.splitlines(True)[1:]))
    spec = {"format": "lfw", "root": str(lfw_root), "pairs": str(pairs_file)}
    faces, pairs, rejected = build_dataset(spec, [str(lfw_root), str(pairs_file)])
    assert rejected.empty
    assert _pair_tuples(pairs) == EXPECTED_PAIRS
    assert pairs["fold"].values.tolist() == ([0, 0, 1, 1] if header == "10fold" else [-1] * 4)
    assert sorted(faces["image"].values) == sorted(IDS)
    assert faces["identity"].sel(image="Biden/Biden_0001.jpg").item() == "Biden"
    _same_faces(faces, reference)


def test_lfw_limit_samples_pairs_with_the_seed(lfw_root):
    spec = {"format": "lfw", "root": str(lfw_root), "pairs": str(lfw_root / "pairs.txt"), "limit": 1}
    _, p1, _ = build_dataset(spec, lfw_root, seed=3)
    _, p2, _ = build_dataset(spec, lfw_root, seed=3)
    assert p1.sizes["pair"] == 1 and _pair_tuples(p1) == _pair_tuples(p2)


def test_manifest_detected_and_with_landmarks_match_folder(lfw_root, reference, tmp_path):
    det = FaceDetector()
    rows = []
    for image_id in IDS:
        lm = det.detect(read_rgb(lfw_root / image_id))[0].landmarks.astype(np.float64)
        rows.append(
            {
                "path": image_id,
                "identity": image_id.split("/")[0],
                **{f"{c}{i + 1}": repr(float(lm[i, k])) for i in range(5) for k, c in enumerate("xy")},
            }
        )
    table = pd.DataFrame(rows)
    plain = tmp_path / "plain.csv"
    table[["path", "identity"]].to_csv(plain, index=False)
    marked = tmp_path / "marked.csv"
    table.to_csv(marked, index=False)
    for csv in (plain, marked):
        faces, pairs, rejected = build_dataset({"format": "manifest", "path": str(csv), "root": str(lfw_root)}, csv)
        assert rejected.empty and sorted(faces["image"].values) == sorted(IDS)
        assert int(pairs["genuine"].sum()) == 3  # three Obama photos
        _same_faces(faces, reference)
    assert (faces["faces_found"].values == -1).all()  # landmarks given: no detection


def _bin(reference, tmp_path):
    """An insightface pack of the reference faces (PNG: lossless), pairs as EXPECTED_PAIRS."""
    order = [x for p in EXPECTED_PAIRS for x in p[:2]]
    blobs = [
        cv2.imencode(".png", cv2.cvtColor(reference["pixels"].sel(image=i).values, cv2.COLOR_RGB2BGR))[1].tobytes()
        for i in order
    ]
    path = tmp_path / "lfw.bin"
    path.write_bytes(
        pickle.dumps((blobs, [p[2] for p in EXPECTED_PAIRS]), protocol=4)
    )  # py2-era packs: str → bytes; py3 bytes need >= 3
    return path, {f"{k:05d}": image_id for k, image_id in enumerate(order)}


def test_insightface_bin_passes_aligned_faces_through(reference, tmp_path):
    path, rename = _bin(reference, tmp_path)
    faces, pairs, rejected = build_dataset({"format": "insightface_bin", "path": str(path)}, path)
    assert rejected.empty and faces.sizes["image"] == 8
    assert _pair_tuples(pairs, rename) == EXPECTED_PAIRS
    _same_faces(faces, reference, rename=rename)


def test_insightface_bin_with_numpy_arrays(reference, tmp_path):
    """Some packs store each image as a numpy uint8 array: the allow-list admits numpy's reconstruction."""
    path, rename = _bin(reference, tmp_path)
    blobs, issame = pickle.loads(path.read_bytes())
    path.write_bytes(pickle.dumps(([np.frombuffer(b, np.uint8) for b in blobs], np.array(issame)), protocol=4))
    faces, _pairs, _ = build_dataset({"format": "insightface_bin", "path": str(path)}, path)
    _same_faces(faces, reference, rename=rename)


def test_pair_list_cr_fiqa_layout(reference, tmp_path):
    """CR-FIQA's extract_bin.py: %05d.jpg crops with swapped channels; 'i j label' lines."""
    root = tmp_path / "data"
    images = root / "quality_data" / "lfw" / "images"
    images.mkdir(parents=True)
    order = [x for p in EXPECTED_PAIRS for x in p[:2]]
    listed = []
    for k, image_id in enumerate(order):
        rgb = reference["pixels"].sel(image=image_id).values
        cv2.imwrite(str(images / f"{k:05d}.png"), rgb)  # RGB written as if BGR, as CR-FIQA does
        listed.append(f"quality_data/lfw/images/{k:05d}.png")
    (root / "image_path_list.txt").write_text("\n".join(listed) + "\n")
    lines = [f"{2 * i:05d} {2 * i + 1:05d} {int(p[2]):05d}" for i, p in enumerate(EXPECTED_PAIRS)]
    lines[-1] = f"{listed[6]} {listed[7]} 0"  # the path form is read too
    (root / "pair_list.txt").write_text("\n".join(lines) + "\n")
    spec = {"format": "pair_list", "root": str(root), "aligned": True, "color_order": "BGR"}
    faces, pairs, rejected = build_dataset(spec, root)
    rename = dict(zip(listed, order, strict=True))
    assert rejected.empty
    assert _pair_tuples(pairs, rename) == EXPECTED_PAIRS
    _same_faces(faces, reference, rename=rename)


def test_manifest_keeps_other_columns_as_labels(lfw_root, tmp_path):
    """Every extra CSV column becomes a string label over ``image`` in faces.nc, named as in the CSV."""
    csv = tmp_path / "labelled.csv"
    table = pd.DataFrame({"path": IDS, "identity": [i.split("/")[0] for i in IDS]})
    table["session"] = [f"s{k % 2}" for k in range(len(IDS))]
    table["camera"] = ["", "canon", "nikon", "canon", "7"]
    table.to_csv(csv, index=False)
    spec = {"format": "manifest", "path": str(csv), "root": str(lfw_root)}
    build = DatasetBuild(spec, csv)
    build.write(tmp_path / "faces.nc", tmp_path / "pairs.nc", tmp_path / "rejected.csv", {"dataset": "labelled"})
    faces = read_dataset(tmp_path / "faces.nc")
    assert {"session", "camera"} <= set(faces.coords) and faces["camera"].dims == ("image",)
    assert faces["session"].values.tolist() == table["session"].tolist()
    assert faces["camera"].values.tolist() == ["", "canon", "nikon", "canon", "7"]  # strings, as written
    for clash in ("source", "group", "pixels", "camera id"):
        table.rename(columns={"session": clash}).to_csv(csv, index=False)
        with pytest.raises(ValueError, match=rf"{csv}: column\(s\) \['{clash}'\] cannot be label names"):
            build_dataset(spec, csv)

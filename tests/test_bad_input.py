"""Each kind of bad input is exactly one row of rejected.csv (or, where decided, converted); the run goes on."""

import os
import pickle
import shutil
import struct
import zlib

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from amva.datasets.build import build_dataset


@pytest.fixture
def root(tmp_path, demo_sources):
    """A folder dataset with two good photos; each test adds its bad file under bad/."""
    root = tmp_path / "root"
    for name in ("obama", "biden"):
        (root / name).mkdir(parents=True)
        shutil.copy(demo_sources[name], root / name / demo_sources[name].name)
    (root / "bad").mkdir()
    return root


def _one_rejection(root, image_id, match, **spec):
    faces, _, rejected = build_dataset({"format": "folder", **spec}, root)
    assert sorted(faces["image"].values) == ["biden/biden.jpg", "obama/obama.jpg"]
    assert rejected["id"].tolist() == [image_id]
    assert match in rejected["reason"].item(), rejected["reason"].item()


def test_truncated_file(root, demo_sources):
    (root / "bad" / "cut.jpg").write_bytes(demo_sources["obama2"].read_bytes()[:2000])
    _one_rejection(root, "bad/cut.jpg", "cannot read image")


def test_non_image_with_image_suffix(root):
    (root / "bad" / "notes.jpg").write_text("this is text, not a JPEG")
    _one_rejection(root, "bad/notes.jpg", "cannot read image")


@pytest.mark.parametrize("mode", ["gray", "16bit", "rgba", "cmyk"])
def test_unusual_pixel_formats_are_converted_not_rejected(root, demo_sources, mode):
    """Decision: grey, 16-bit, alpha and CMYK are converted to 8-bit RGB and used, nothing recorded."""
    rgb = cv2.cvtColor(cv2.imread(str(demo_sources["obama2"])), cv2.COLOR_BGR2RGB)
    out = root / "bad" / ("x.jpg" if mode == "cmyk" else "x.png")
    if mode == "gray":
        cv2.imwrite(str(out), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    elif mode == "16bit":
        cv2.imwrite(str(out), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    elif mode == "rgba":
        cv2.imwrite(str(out), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))
    else:
        Image.fromarray(rgb).convert("CMYK").save(out, quality=95)
    faces, _, rejected = build_dataset({"format": "folder"}, root)
    assert rejected.empty
    face = faces["pixels"].sel(image=f"bad/{out.name}").values
    assert face.shape == (112, 112, 3) and faces["faces_found"].sel(image=f"bad/{out.name}").item() >= 1


def _png_header_only(path, width, height):
    """A PNG that declares ``width`` x ``height`` px but carries 4 bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = struct.pack(">I", 4) + b"IDAT" + b"\0" * 4 + struct.pack(">I", zlib.crc32(b"IDAT" + b"\0" * 4))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + idat)


@pytest.mark.parametrize(
    ("width", "height", "match"),
    [
        (10_000, 8_000, "max_pixels=50000000"),  # 80 MP: above our limit, below Pillow's
        (20_000, 20_000, "Pillow's limit"),  # 400 MP: Pillow itself refuses the header
    ],
)
def test_huge_image_is_refused_before_decoding(root, width, height, match):
    """A bomb is refused from its header alone, whichever limit it crosses first."""
    _png_header_only(root / "bad" / "bomb.png", width, height)
    _one_rejection(root, "bad/bomb.png", match)


def test_max_pixels_option(root, demo_sources):
    """The limit is an option: a 1 MP cap rejects a larger photo, one row, with its size."""
    rgb = cv2.imread(str(demo_sources["obama2"]))
    cv2.imwrite(str(root / "bad" / "big.png"), cv2.resize(rgb, (2000, 1600)))
    _one_rejection(root, "bad/big.png", "2000x1600 px", max_pixels=2_500_000)


def test_no_face(root):
    cv2.imwrite(str(root / "bad" / "wall.png"), np.full((200, 200, 3), 128, np.uint8))
    _one_rejection(root, "bad/wall.png", "no face found")


def test_several_faces_keep_the_largest_and_record_the_count(root, demo_sources):
    big = cv2.imread(str(demo_sources["obama2"]))
    small = cv2.imread(str(demo_sources["biden"]))
    small = cv2.resize(small, (big.shape[1] // 2, big.shape[0] // 2))
    canvas = np.zeros((big.shape[0], big.shape[1] + small.shape[1], 3), np.uint8)
    canvas[:, : big.shape[1]] = big
    canvas[: small.shape[0], big.shape[1] :] = small
    cv2.imwrite(str(root / "bad" / "two.png"), canvas)
    cv2.imwrite(str(root / "bad" / "one.png"), big)
    faces, _, rejected = build_dataset({"format": "folder"}, root)
    assert rejected.empty
    assert faces["faces_found"].sel(image="bad/two.png").item() == 2
    assert faces["faces_found"].sel(image="bad/one.png").item() == 1
    diff = np.abs(faces["pixels"].sel(image="bad/two.png").astype(int) - faces["pixels"].sel(image="bad/one.png"))
    assert float(diff.mean()) < 3  # the larger face (Obama) is the one kept


def test_pair_naming_a_missing_image(root):
    (root / "pairs.txt").write_text("2\nobama\t1\t2\nobama\t1\tbiden\t1\n")
    for person in ("obama", "biden"):
        (root / person / f"{person}.jpg").rename(root / person / f"{person}_0001.jpg")
    spec = {"format": "lfw", "pairs": str(root / "pairs.txt")}
    _faces, pairs, rejected = build_dataset(spec, root)
    assert pairs.sizes["pair"] == 1 and not pairs["genuine"].item()
    assert rejected["id"].tolist() == ["pair:2"]
    assert "'obama/obama_0002.jpg' not found" in rejected["reason"].item()


def test_malformed_pair_line(root):
    (root / "pairs.txt").write_text("1\nobama\t1\tbiden\n")
    (root / "obama" / "obama.jpg").rename(root / "obama" / "obama_0001.jpg")
    with pytest.raises(ValueError, match="no usable face"):
        build_dataset({"format": "lfw", "pairs": str(root / "pairs.txt")}, root)
    (root / "pairs.txt").write_text("1\nobama\t1\tbiden\nobama\t1\t1\n")
    _, pairs, rejected = build_dataset({"format": "lfw", "pairs": str(root / "pairs.txt")}, root)
    assert rejected["id"].tolist() == ["pair:2"] and "malformed line 2" in rejected["reason"].item()
    assert pairs.sizes["pair"] == 1


def test_duplicate_ids(root, tmp_path):
    csv = tmp_path / "m.csv"
    pd.DataFrame(
        {"path": ["obama/obama.jpg", "biden/biden.jpg", "obama/obama.jpg"], "identity": ["obama", "biden", "obama"]}
    ).to_csv(csv, index=False)
    faces, _, rejected = build_dataset({"format": "manifest", "path": str(csv), "root": str(root)}, csv)
    assert faces.sizes["image"] == 2
    assert rejected["id"].tolist() == ["obama/obama.jpg"] and "duplicate id" in rejected["reason"].item()


def test_dotdot_path_in_a_list_file(root, tmp_path, demo_sources):
    shutil.copy(demo_sources["obama2"], tmp_path / "outside.jpg")
    (root / "image_path_list.txt").write_text("obama/obama.jpg\nbiden/biden.jpg\n../outside.jpg\n")
    (root / "pair_list.txt").write_text("00000 00001 00000\n")
    _faces, pairs, rejected = build_dataset({"format": "pair_list"}, root)
    assert pairs.sizes["pair"] == 1
    assert rejected["id"].tolist() == ["../outside.jpg"] and "escapes the dataset root" in rejected["reason"].item()


def test_symlink_escaping_the_root(root, tmp_path, demo_sources):
    shutil.copy(demo_sources["obama2"], tmp_path / "outside.jpg")
    os.symlink(tmp_path / "outside.jpg", root / "bad" / "link.jpg")
    _one_rejection(root, "bad/link.jpg", "outside the dataset root")


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([Evil()], [True])))
    with pytest.raises(ValueError, match=r"refusing to load global (posix|os|nt)\.system"):
        build_dataset({"format": "insightface_bin", "path": str(path)}, path)
    assert not (tmp_path / "pwned").exists()

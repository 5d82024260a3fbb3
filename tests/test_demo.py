"""The demo quality ladder: fetching, building, and the degradations."""

import io
import shutil
import tarfile
from contextlib import redirect_stdout
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

import amva.fetch
from amva.datasets import demo
from amva.datasets.align import FaceDetector
from amva.datasets.degrade import DEGRADATIONS, PARAMS, SEVERITIES, degrade
from amva.datasets.demo import SOURCES, build_demo, fetch_sources
from amva.io import sha256_file

N_PER_SOURCE = 1 + len(DEGRADATIONS) * len(SEVERITIES)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def built(demo_sources, detector):
    return build_demo(next(iter(demo_sources.values())).parent, detector=detector)


@pytest.fixture
def copy_dir(demo_sources, tmp_path) -> Path:
    for path in demo_sources.values():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float64) - b) ** 2).mean())


# --- fetching -------------------------------------------------------------


def test_sources_fetched_and_verified(demo_sources):
    assert list(demo_sources) == [s.name for s in SOURCES]
    assert {s.identity for s in SOURCES} == {"obama", "biden", "astronaut"}
    for s in SOURCES:
        assert demo_sources[s.name].name == s.file and demo_sources[s.name].is_file()


def test_fetch_is_idempotent_without_network(copy_dir, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("downloaded although every photo was present")

    monkeypatch.setattr(amva.fetch, "_download", no_pip)
    assert fetch_sources(copy_dir) == {s.name: copy_dir / s.file for s in SOURCES}


def test_missing_photo_is_extracted_from_its_archive_only(copy_dir, demo_sources, monkeypatch, tmp_path_factory):
    """A missing photo triggers one download of its own archive (faked here)."""
    calls = []

    def fake_download(requirement, sdist, workdir):
        calls.append((requirement, sdist))
        tar_path = Path(workdir) / "face_recognition-1.3.0.tar.gz"
        with tarfile.open(tar_path, "w:gz") as tf:
            tf.add(demo_sources["obama2"], "face_recognition-1.3.0/tests/test_images/obama2.jpg")
        return tar_path

    monkeypatch.setattr(amva.fetch, "_download", fake_download)
    (copy_dir / "obama2.jpg").unlink()
    paths = fetch_sources(copy_dir)
    assert calls == [("face_recognition==1.3.0", True)]
    assert paths["obama2"].read_bytes() == demo_sources["obama2"].read_bytes()
    assert not list(copy_dir.glob(".*.part"))  # temp file replaced atomically


@pytest.mark.parametrize("corrupt", ["truncate", "overwrite"])
def test_corrupted_photo_names_file_and_hashes(copy_dir, corrupt):
    path = copy_dir / "obama3.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if corrupt == "truncate" else data[:100] + b"\0" * 64 + data[164:])
    expected = next(s.sha256 for s in SOURCES if s.name == "obama3")
    for call in (lambda: fetch_sources(copy_dir), lambda: build_demo(copy_dir)):
        with pytest.raises(ValueError, match="sha256") as err:
            call()
        msg = str(err.value)
        assert "obama3.jpg" in msg and expected in msg and sha256_file(path) in msg


def test_cli_fetch(copy_dir):
    out = io.StringIO()
    with redirect_stdout(out):
        assert demo.main(["fetch", str(copy_dir)]) == 0
    assert [line.split("\t")[0] for line in out.getvalue().splitlines()] == [s.name for s in SOURCES]


# --- the built demo -------------------------------------------------------


def test_build_shape_ids_and_labels(built):
    images, rejected = built
    assert rejected == []
    assert len(images) == len(SOURCES) * N_PER_SOURCE
    assert len({im.id for im in images}) == len(images)
    by_name = {s.name: s for s in SOURCES}
    for im in images:
        source, label, severity = im.id.split("/")
        assert source == im.source and im.identity == by_name[source].identity
        assert int(severity) == im.severity
        if im.severity == 0:
            assert (label, im.degradation) == ("original", "none")
        else:
            assert label == im.degradation in DEGRADATIONS and im.severity in SEVERITIES
        assert im.face.shape == (112, 112, 3) and im.face.dtype == np.uint8
        assert im.landmarks.shape == (5, 2)


def test_originals_detected_confidently_and_geometry_shared(built):
    images, _ = built
    originals = {im.source: im for im in images if im.severity == 0}
    assert len(originals) == len(SOURCES)
    for im in images:
        orig = originals[im.source]
        assert orig.detection_score > 0.8
        assert im.detection_score == orig.detection_score
        np.testing.assert_array_equal(im.landmarks, orig.landmarks)


def test_build_is_deterministic_and_kinds_independent(built, demo_sources, detector):
    images, _ = built
    dest = next(iter(demo_sources.values())).parent
    again, _ = build_demo(dest, detector=detector)
    assert [im.id for im in again] == [im.id for im in images]
    assert all(a.face.tobytes() == b.face.tobytes() for a, b in zip(again, images, strict=True))
    # a subset of kinds (other order) reproduces the same pixels for those kinds
    subset, _ = build_demo(dest, degradations=["rotation", "gaussian_noise"], severities=(3,), detector=detector)
    full = {im.id: im.face for im in images}
    assert len(subset) == len(SOURCES) * 3
    assert all(im.face.tobytes() == full[im.id].tobytes() for im in subset)
    other, _ = build_demo(dest, degradations=["gaussian_noise"], seed=1, detector=detector)
    assert any(im.face.tobytes() != full[im.id].tobytes() for im in other if im.severity > 0)


def test_build_rejects_bad_arguments(demo_sources):
    dest = next(iter(demo_sources.values())).parent
    with pytest.raises(ValueError, match="blurr"):
        build_demo(dest, degradations=["blurr"])
    with pytest.raises(ValueError, match="severities"):
        build_demo(dest, severities=(0, 1))


def test_undetectable_source_is_reported_not_dropped(copy_dir):
    images, rejected = build_demo(copy_dir, degradations=["jpeg"], detector=FaceDetector(score_threshold=0.99))
    assert rejected, "threshold 0.99 should reject the demo faces (scores 0.93-0.95)"
    assert {r.id for r in rejected} | {im.source for im in images} == {s.name for s in SOURCES}
    assert all("no face found" in r.reason and r.id in r.reason and Path(r.path).is_file() for r in rejected)


# --- degradations ---------------------------------------------------------


@pytest.fixture(scope="module")
def faces(built):
    return [im.face for im in built[0] if im.severity == 0]


def test_degradation_table_covers_severities():
    assert len(SEVERITIES) >= 3 and tuple(range(1, len(SEVERITIES) + 1)) == SEVERITIES
    assert set(PARAMS) == set(DEGRADATIONS) and all(len(p) == len(SEVERITIES) for p in PARAMS.values())


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_degradation_properties(kind, faces):
    for face in faces:
        before = face.copy()
        same = degrade(face, kind, 0, np.random.default_rng(0))
        assert same is not face and same.tobytes() == face.tobytes()
        outs = [degrade(face, kind, s, np.random.default_rng([7, s])) for s in SEVERITIES]
        assert face.tobytes() == before.tobytes()  # input untouched
        for s, out in zip(SEVERITIES, outs, strict=True):
            assert out.shape == face.shape and out.dtype == np.uint8
            assert degrade(face, kind, s, np.random.default_rng([7, s])).tobytes() == out.tobytes()
        mse = [_mse(out, face) for out in outs]
        assert mse[0] > 0 and all(a < b for a, b in pairwise(mse)), mse


@pytest.mark.parametrize("kind", ["gaussian_blur", "motion_blur", "downscale"])
def test_blur_removes_detail_with_severity(kind, faces):
    for face in faces:
        sharp = [cv2.Laplacian(cv2.cvtColor(degrade(face, kind, s, np.random.default_rng(0)),
                                            cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                 for s in (0, *SEVERITIES)]  # fmt: skip
        assert all(a > b for a, b in pairwise(sharp)), sharp


def test_exposure_clips(faces):
    rng = np.random.default_rng(0)
    for face in faces:
        over, under = degrade(face, "overexposure", 3, rng), degrade(face, "underexposure", 3, rng)
        assert (over == 255).mean() > (face == 255).mean() + 0.1
        assert under.mean() < face.mean() / 2 and len(np.unique(under)) < len(np.unique(face)) / 2


def test_degrade_rejects_bad_input(faces):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'smear'.*gaussian_blur"):
        degrade(faces[0], "smear", 1, rng)
    for severity in (-1, len(SEVERITIES) + 1, 1.5):
        with pytest.raises(ValueError, match="severity"):
            degrade(faces[0], "jpeg", severity, rng)
    with pytest.raises(ValueError, match="RGB uint8"):
        degrade(faces[0].astype(np.float32), "jpeg", 1, rng)


# --- other alignment templates ---------------------------------------------


@pytest.fixture(scope="module")
def built_dlib(demo_sources, detector):
    return build_demo(next(iter(demo_sources.values())).parent, severities=[3], template="dlib150", detector=detector)


def test_dlib_template_same_ladder_in_face_units(built, built_dlib):
    arcface = {im.id: im for im in built[0]}
    assert [im.id for im in built_dlib[0]] == [i for i in arcface if i.endswith(("/0", "/3"))]
    by_id = {im.id: im for im in built_dlib[0]}
    for im in built_dlib[0]:  # geometry is the original's, on dlib's 150 px chip
        assert im.face.shape == (150, 150, 3)
        np.testing.assert_array_equal(im.landmarks, by_id[f"{im.source}/original/0"].landmarks)
    for source in ("obama", "biden"):
        original, occluded = by_id[f"{source}/original/0"], by_id[f"{source}/occlusion/3"]
        lm = np.rint(original.landmarks).astype(int)  # eyes, nose, mouth corners in the chip
        changed = np.abs(occluded.face.astype(int) - original.face).sum(axis=2) > 0
        assert changed[lm[3:, 1], lm[3:, 0]].all() and not changed[lm[:2, 1], lm[:2, 0]].any()
        # blur sigma scales with the face: the chip's face is ~1.5x larger, so the relative
        # loss of detail matches the ArcFace crop's within a tolerance
        ratio = {
            frame: _sharpness(faces[f"{source}/gaussian_blur/3"].face) / _sharpness(faces[f"{source}/original/0"].face)
            for frame, faces in (("arcface", arcface), ("dlib", by_id))
        }
        assert ratio["dlib"] == pytest.approx(ratio["arcface"], rel=0.2), ratio  # unscaled sigma: +23..37%


def _sharpness(face: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_prealigned_input_cannot_take_another_template():
    from amva.datasets.common import Options

    assert Options.from_spec({"aligned": True}).template == "arcface112"
    with pytest.raises(ValueError, match="pre-aligned.*dlib150.*aligned: false"):
        Options.from_spec({"aligned": True}, template="dlib150")

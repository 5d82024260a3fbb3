"""BRISQUE against an independent reference (OpenCV contrib features, libsvm on the LIVE model)."""

import json
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import demo_pixel_record

import amva.fetch
import amva.quality.brisque as bq
from amva.datasets.pixel_record import differences
from amva.models import to_tensor
from amva.quality.brisque import (
    HIGHER_IS_BETTER,
    MODEL_FILES,
    brisque,
    brisque_features,
    fetch_brisque_model,
    load_brisque_model,
    mscn,
    rgb_to_grey,
)

REFERENCE = json.loads((Path(__file__).parent / "data" / "brisque_reference.json").read_text())["images"]
SHAPE = [0, 2, 6, 10, 14, 18, 20, 24, 28, 32]  # the γ features, on a 0.001 grid
SOURCES = ["obama", "obama2", "obama3", "biden", "astronaut"]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return fetch_brisque_model(bq.default_model_dir())


@pytest.fixture(scope="module")
def scored(demo, model_dir):
    faces = demo[0]
    ids = faces["image"].values.tolist()
    return dict(zip(ids, brisque(None, to_tensor(faces["pixels"].values), ids, model_dir=model_dir), strict=True))


@pytest.fixture(scope="module")
def reference_faces(demo):
    """The faces the reference was made from: the built demo must be the recorded one, and the
    reference must have been made from the recorded one."""
    faces = demo[0]
    recorded = demo_pixel_record()
    ids = faces["image"].values.tolist()
    changed = differences(recorded, ids, faces["pixels"].values)
    assert not changed, "the demo is not the recorded one (see test_reproducible):\n" + "\n".join(changed[:5])
    stale = [i for i, ref in REFERENCE.items() if recorded["images"][i]["sha256"] != ref["rgb_sha256"]]
    assert not stale, (
        f"tests/data/brisque_reference.json was made from another demo ({stale[:3]}); "
        "regenerate it with the script stored in its produced_by.script"
    )
    return {i: np.ascontiguousarray(faces["pixels"].sel(image=i).values) for i in REFERENCE}


def has_flat_pixels(rgb: np.ndarray) -> bool:
    """Exactly flat (or symmetric) 7x7 neighbourhoods, where our MSCN is exactly 0 but OpenCV's
    float32 rounding residue, not the image, decides which tail of the AGGD fit a pixel falls in."""
    return bool(np.any(mscn(rgb_to_grey(to_tensor(rgb[None]))[0]) == 0))


def test_fetch_is_idempotent_and_hash_checked(model_dir, tmp_path, monkeypatch):
    assert sorted(p.name for p in model_dir.iterdir() if p.name in MODEL_FILES) == sorted(MODEL_FILES)
    for name in MODEL_FILES:
        shutil.copy(model_dir / name, tmp_path / name)

    def no_download(requirement, sdist, workdir):
        raise AssertionError("files are present: nothing to download")

    monkeypatch.setattr(amva.fetch, "_download", no_download)
    assert fetch_brisque_model(tmp_path) == tmp_path
    with open(tmp_path / "svm.txt", "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(ValueError, match=r"sha256 mismatch for .*svm\.txt"):
        fetch_brisque_model(tmp_path)


def test_fetch_rejects_a_wrong_archive(tmp_path, monkeypatch):
    import zipfile

    def fake_wheel(requirement: str, sdist: bool, workdir: Path) -> Path:
        path = workdir / "fake.whl"
        with zipfile.ZipFile(path, "w") as zf:
            for member, _ in MODEL_FILES.values():
                zf.writestr(member, b"not the model")
        return path

    monkeypatch.setattr(amva.fetch, "_download", fake_wheel)
    with pytest.raises(ValueError, match=r"sha256 mismatch for (svm\.txt|normalize\.pickle) \(brisque/models/"):
        fetch_brisque_model(tmp_path / "new")
    assert not any((tmp_path / "new").iterdir())


def test_live_model_is_the_libsvm_model(model_dir):
    m = load_brisque_model(model_dir)
    assert m.support_vectors.shape == (770, 36) and m.gamma == 0.05 and m.rho == -155.845
    assert np.all(np.abs(m.coef) <= 1024)
    for ref in REFERENCE.values():  # libsvm's own evaluation of the same SVR on the same features
        assert m.predict(np.array(ref["opencv_features"]))[0] == pytest.approx(ref["libsvm_live_score"], abs=1e-8)


def test_scaling_file_is_read_without_globals(tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"min_": [0.0], "max_": np.ones(1)}))
    with open(path, "rb") as fh, pytest.raises(pickle.UnpicklingError, match="refusing"):
        bq._PlainUnpickler(fh).load()


def test_grey_is_opencv_8bit_luma(reference_faces):
    rgb = np.stack(list(reference_faces.values()))
    expected = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])
    np.testing.assert_array_equal(rgb_to_grey(to_tensor(rgb)), expected)


def test_features_match_opencv(reference_faces):
    strict = {i: rgb for i, rgb in reference_faces.items() if not has_flat_pixels(rgb)}
    assert len(strict) >= 8, sorted(strict)
    for image_id, rgb in strict.items():
        ref = np.array(REFERENCE[image_id]["opencv_features"])
        ours = brisque_features(rgb_to_grey(to_tensor(rgb[None]))[0])
        # γ: the same table step, or the neighbouring one where float32 moments cross a midpoint
        np.testing.assert_allclose(ours[SHAPE], ref[SHAPE], atol=0.0011, rtol=0, err_msg=image_id)
        other = np.setdiff1d(np.arange(36), SHAPE)
        rel = np.abs(ours[other] - ref[other]) / np.maximum(np.abs(ref[other]), 1e-3)
        assert rel.max() < 2e-3, (image_id, other[np.argmax(rel)], rel.max())


def test_scores_match_reference(reference_faces, model_dir):
    ids = list(reference_faces)
    scores = brisque(None, to_tensor(np.stack(list(reference_faces.values()))), ids, model_dir=model_dir)
    assert scores.dtype == np.float64 and scores.shape == (len(ids),)
    for image_id, s in zip(ids, scores, strict=True):
        tol = 1.5 if has_flat_pixels(reference_faces[image_id]) else 0.05
        assert s == pytest.approx(REFERENCE[image_id]["libsvm_live_score"], abs=tol), image_id


def test_interface_and_batch_independence(reference_faces, model_dir):
    assert HIGHER_IS_BETTER is False
    ids = list(reference_faces)[:4]
    x = to_tensor(np.stack([reference_faces[i] for i in ids]))
    whole = brisque(None, x, ids, model_dir=model_dir)
    np.testing.assert_array_equal(whole[2:], brisque("ignored", x[2:], ids[2:], model_dir=model_dir))
    assert brisque(None, x[:0], [], model_dir=model_dir).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        brisque(None, x[:, :1], ids, model_dir=model_dir)


def test_flat_image_has_zero_mscn_and_nan_score(model_dir):
    flat = torch.full((1, 3, 112, 112), 128.0)
    assert not np.any(mscn(rgb_to_grey(flat)[0]))
    assert np.isnan(brisque(None, flat, ["flat"], model_dir=model_dir)[0])


def test_blur_and_noise_score_worse_than_originals(scored):
    for source in SOURCES:
        original = scored[f"{source}/original/0"]
        assert scored[f"{source}/gaussian_blur/3"] > original, source
        assert scored[f"{source}/gaussian_noise/3"] > original, source
        for kind in ["gaussian_blur", "jpeg", "downscale"]:  # strictly worse at each step of these ladders
            ladder = [original] + [scored[f"{source}/{kind}/{s}"] for s in (1, 2, 3)]
            assert np.all(np.diff(ladder) > 0), (source, kind, ladder)
    assert all(np.isfinite(v) for v in scored.values())

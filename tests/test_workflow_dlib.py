"""dlib (another alignment template) and the identity-mean CAM target through the real workflow.

A dataset is aligned once per template: ArcFace-112 models share ``faces.nc``, dlib reads
``faces-dlib150.nc`` (same photos, detections and image order); the face mask of the
analysis is drawn in the model's frame. The dlib run also has a Grad-CAM whose target is
the cosine to the identity's mean embedding, checked against a direct computation.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import dry_run, link_photos, snakemake

from amva.cam import make_cam
from amva.datasets.align import similarity_transform, template_points
from amva.face_mask import face_mask
from amva.models import to_tensor
from amva.models.dlib import load_dlib


def _config(photos: Path, models: dict) -> dict:
    first = next(iter(models))
    return {
        "seed": 0,
        "datasets": {
            "tiny": {"format": "demo", "sources": str(photos), "severities": [3], "degradations": ["gaussian_blur"]}
        },
        "models": models,
        "fiqa": {
            "norm": {"method": "embedding_norm", "model": first},
            "sharpness": {"method": "sharpness"},
        },
        "cams": {
            "gradcam": {"method": "gradcam", "batch_size": 4},
            "identity": {"method": "gradcam", "target": "identity_cosine", "fiqa": ["norm"]},
        },
        "bins": {"mode": "high_low", "k": 3},
        "statistics": {"n_boot": 100, "n_perm": 100},
        "evaluation": {"threshold": {"fnmr": 0.1}},
    }


@pytest.fixture(scope="module")
def dlib_run(tmp_path_factory, demo_sources) -> Path:
    workdir = tmp_path_factory.mktemp("dlib")
    config = _config(link_photos(workdir, demo_sources), {"dlib": {"kind": "dlib"}})
    proc = snakemake(workdir, "--cores", "2", config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_aligned_once_per_template(tmp_path: Path, demo_sources) -> None:
    models = {"sface": {"kind": "sface"}, "sface_again": {"kind": "sface"}, "dlib": {"kind": "dlib"}}
    config = _config(link_photos(tmp_path, demo_sources), models)
    assert [job.rule for job in dry_run(tmp_path, config=config)].count("faces") == 1
    # the rest of the DAG waits for the faces checkpoint (a dataset with no usable image has none)
    proc = snakemake(tmp_path, "--cores", "2", "results/tiny/faces.nc", config=config)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = [job.rule for job in dry_run(tmp_path, config=config)]
    assert jobs.count("faces") == 0 and jobs.count("faces_template") == 1, jobs
    assert jobs.count("embeddings") == 3, jobs


def test_dlib_faces_are_the_same_images_on_dlibs_chip(dlib_run: Path) -> None:
    arcface = xr.load_dataset(dlib_run / "results/tiny/faces.nc")
    dlib = xr.load_dataset(dlib_run / "results/tiny/faces-dlib150.nc")
    assert dlib.attrs["align_template"] == "dlib150" and arcface.attrs["align_template"] == "arcface112"
    assert dlib["pixels"].shape[1:] == (150, 150, 3)
    np.testing.assert_array_equal(dlib["image"].values, arcface["image"].values)
    np.testing.assert_array_equal(dlib["degradation"].values, arcface["degradation"].values)
    # each original's landmarks are fitted onto dlib's template: the best similarity from
    # them to the template is the identity (up to dlib's pixel-grid rounding, ~1%)
    for landmarks in dlib["landmarks"].sel(image=dlib["degradation"] == "none").values:
        fit = similarity_transform(landmarks, template_points("dlib150"))
        np.testing.assert_allclose(fit[:, :2], np.eye(2), atol=0.02)
        np.testing.assert_allclose(fit[:, 2], 0.0, atol=2.0)


def test_dlib_embeds_and_maps_through_the_workflow(dlib_run: Path) -> None:
    emb = xr.load_dataset(dlib_run / "results/tiny/dlib/embeddings.nc")["embedding"]
    assert emb.shape == (10, 128)
    originals = emb.sel(image=[i for i in emb["image"].values if i.endswith("/original/0")])
    unit = originals / np.linalg.norm(originals, axis=1, keepdims=True)
    dist = {
        (a, b): float(np.linalg.norm(unit.sel(image=f"{a}/original/0") - unit.sel(image=f"{b}/original/0")))
        for a in ("obama", "obama2", "obama3", "biden", "astronaut")
        for b in ("obama", "obama2", "obama3", "biden", "astronaut")
    }
    same = [dist["obama", "obama2"], dist["obama", "obama3"], dist["obama2", "obama3"]]
    other = [dist[a, b] for a in ("obama", "obama2", "obama3") for b in ("biden", "astronaut")]
    assert max(same) < min(other), dist

    maps = xr.load_dataset(dlib_run / "results/tiny/dlib/cam/gradcam.nc")["maps"]
    assert maps.shape == (10, 150, 150)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0

    result = xr.load_dataset(dlib_run / "results/tiny/dlib/gradcam/variation/norm.nc")
    expected = face_mask(150, 0.5, "dlib150")
    np.testing.assert_array_equal(result["face_mask"].values, expected.values.astype(np.int8))
    assert not np.array_equal(expected.values, face_mask(150, 0.5).values)  # not the ArcFace ellipse
    assert (dlib_run / "results/report/tiny/dlib/gradcam/norm/maps.png").stat().st_size > 10_000


def test_prealigned_dataset_refused_for_dlib(tmp_path: Path) -> None:
    config = _config(tmp_path, {"dlib": {"kind": "dlib"}})
    config["datasets"] = {"lfw_bin": {"format": "insightface_bin", "path": str(tmp_path / "lfw.bin")}}
    proc = snakemake(tmp_path, "-n", config=config)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "models.dlib" in out and "dlib150" in out and "lfw_bin" in out, out[-2000:]


def test_identity_target_matches_a_direct_computation(dlib_run: Path) -> None:
    faces = xr.load_dataset(dlib_run / "results/tiny/faces-dlib150.nc")
    emb = xr.load_dataset(dlib_run / "results/tiny/dlib/embeddings.nc")["embedding"].values
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    identity = faces["identity"].values
    refs = np.stack([unit[identity == who].mean(axis=0) for who in identity])  # plain loop, no groupby
    cam = make_cam(load_dlib(), "gradcam", target="identity_cosine")
    expected = cam(to_tensor(faces["pixels"].values), references=torch.from_numpy(refs).float()).maps.numpy()
    got = xr.load_dataset(dlib_run / "results/tiny/dlib/cam/identity.nc")
    assert got["maps"].shape == expected.shape
    np.testing.assert_allclose(got["maps"].values, expected, atol=1e-4)
    own = xr.load_dataset(dlib_run / "results/tiny/dlib/cam/gradcam.nc")["maps"].values
    assert np.abs(own - expected).mean() > 0.01  # another target explains something else
    assert (dlib_run / "results/tiny/dlib/identity/variation/norm.nc").is_file()

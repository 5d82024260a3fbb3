"""The real Snakemake engine on a tiny config: outputs, values, incrementality, report."""

import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import ROOT, snakemake, tiny_config, write_scores

from amva.io import read_dataset


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def test_outputs_exist_with_logs_and_provenance(run):
    res = run / "results"
    for rel in [
        "tiny/faces.nc",
        "tiny/pairs.nc",
        "tiny/rejected.csv",
        "tiny/quality/serfiq.nc",
        "tiny/bins/serfiq.nc",
        "tiny/sface/embeddings.nc",
        "tiny/sface/cam/gradcam.nc",
        "tiny/sface/gradcam/variation/serfiq.nc",
        "tiny/sface/edc/serfiq.nc",
        "report/tiny/sface/gradcam/serfiq/maps.png",
        "report/tiny/sface/edc.svg",
    ]:
        assert (res / rel).stat().st_size > 0, rel
    for nc in res.rglob("*.nc"):
        attrs = read_dataset(nc).attrs
        assert {"amva_config", "amva_versions", "amva_git_commit", "amva_created"} <= set(attrs), nc
    assert len(list((run / "logs").rglob("*.log"))) >= 10


def test_maps_bins_and_statistics_agree(run):
    res = run / "results" / "tiny"
    faces = read_dataset(res / "faces.nc")
    assert faces.sizes["image"] == 20
    maps = read_dataset(res / "sface/cam/gradcam.nc")["maps"]
    assert maps.shape == (20, 112, 112) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    bins = read_dataset(res / "bins/serfiq.nc")
    binned = read_dataset(res / "sface/cam/gradcam_binned.nc")
    labels = bins["bin"]
    assert sorted(binned["image"].values) == sorted(labels["image"].values[labels.values != ""])
    ds = read_dataset(res / "sface/gradcam/variation/serfiq.nc")
    assert ds["bin_size"].values.tolist() == [5, 5]  # matched: one HIGH and one LOW image per photo
    assert ds["bin_groups"].values.tolist() == [5, 5] and ds["makeup_tvd"].item() == 0
    assert ds.attrs["group_by"] == "source" and ds.attrs["enough_groups"] == 1
    mask = ds["face_mask"].values.astype(bool)
    low = maps.sel(image=labels["image"].values[labels.values == "low"]).values
    assert ds["region_mean"].sel(bin="low", stat="amv", region="outside").item() == pytest.approx(
        low.std(axis=0, ddof=1)[~mask].mean(), rel=1e-4
    )
    q, source = bins["quality"], faces["source"]
    assert (bins["group"] == source).all()
    for photo in np.unique(source.values):  # within each photo, its HIGH image outscores the rest, LOW scores lowest
        own = q[source.values == photo]
        mine = labels[source.values == photo]
        assert own[mine.values == "high"].item() == own.max() and own[mine.values == "low"].item() == own.min()


def test_fiqa_methods_tables_and_imports(run):
    res = run / "results" / "tiny"
    brisque = read_dataset(res / "quality/brisque.nc")
    assert brisque.attrs["higher_is_better_raw"] == 0
    np.testing.assert_allclose(brisque["quality"], -brisque["raw"])
    imported = read_dataset(res / "quality/imported.nc")
    assert np.all(np.isfinite(imported["quality"])) and imported.sizes["image"] == 20
    problems = pd.read_csv(res / "quality/imported.problems.csv")
    assert problems["kind"].tolist() == ["extra"] and "elsewhere/x.png" in problems["item"].item()
    validation = pd.read_csv(res / "quality/validation.csv").set_index(["fiqa", "degradation"])
    assert set(validation.index.get_level_values(0)) == {"serfiq", "brisque", "sharpness", "imported"}
    assert validation.loc[("sharpness", "gaussian_blur"), "spearman"] < -0.5
    agreement = pd.read_csv(res / "quality/agreement.csv")
    assert len(agreement) == 6 and {"high_overlap", "low_overlap"} <= set(agreement.columns)
    regions = pd.read_csv(run / "results/report/regions.csv")
    assert len(regions) == (4 + 1) * 2 * 2  # (gradcam x 4 FIQA + gradcam_binned x serfiq) x bins x stats
    assert not (res / "sface/gradcam_binned/variation/brisque.nc").exists()
    amv = regions[regions["statistic"] == "amv"]
    assert amv["perm_p_value"].between(0, 1).all()
    assert ((amv["outside_ci_lower"] <= amv["outside"]) & (amv["outside"] <= amv["outside_ci_upper"])).all()


def test_edc_starts_at_plain_fnmr(run):
    res = run / "results" / "tiny"
    pairs = read_dataset(res / "pairs.nc")
    emb = read_dataset(res / "sface/embeddings.nc")["embedding"].values
    index = {k: i for i, k in enumerate(read_dataset(res / "sface/embeddings.nc")["image"].values)}
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    gen = pairs["genuine"].values.astype(bool)
    s = np.array([e[index[a]] @ e[index[b]] for a, b in zip(pairs["a"].values, pairs["b"].values, strict=False)])
    edc = read_dataset(res / "sface/edc/serfiq.nc")
    tau = edc.attrs["edc_threshold"]
    assert edc["edc_error"].values[0] == pytest.approx(np.mean(s[gen] < tau))
    assert edc["edc_error"].values[0] == pytest.approx(0.1, abs=0.02)
    assert 0 <= float(edc["pauc"].sel(limit=0.2)) <= 0.2
    assert edc["erc_fnmr"].dims == ("fmr", "erc_discard")


def test_adding_a_dataset_schedules_only_its_jobs(run, demo_sources):
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    root = run / "extra"
    (root / "obama").mkdir(parents=True, exist_ok=True)
    (run / "scores_extra.txt").write_text("")
    cfg["datasets"]["extra"] = {"format": "folder", "root": str(root)}
    proc = snakemake(run, "-n", "--cores", "2", config=cfg, name="config_extra.yaml")
    assert proc.returncode == 0, proc.stdout[-2000:]
    wildcards = re.findall(r"^\s+wildcards: (.*)$", proc.stdout, flags=re.M)
    assert wildcards and all("dataset=extra" in w for w in wildcards)
    assert "checkpoint faces:" in proc.stdout  # faces is a checkpoint: the CAM shard count depends on it


def test_report_is_offline(run):
    proc = snakemake(run, "--report", "report.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (run / "report.html").read_text()
    external = re.findall(r"<(?:script|link|img|iframe)[^>]+(?:src|href)=[\"'](https?:)?//", html)
    assert not external
    assert "maps.png" in html and "edc.svg" in html


def test_bad_config_names_the_key(tmp_path, demo_sources):
    cfg = tiny_config(next(iter(demo_sources.values())).parent)
    cfg["bins"]["kk"] = 3
    proc = snakemake(tmp_path, "-n", config=cfg)
    assert proc.returncode != 0 and "'kk' was unexpected" in proc.stdout + proc.stderr
    cfg = tiny_config(next(iter(demo_sources.values())).parent)
    cfg["fiqa"]["serfiq"]["model"] = "r100"
    proc = snakemake(tmp_path, "-n", config=cfg)
    assert proc.returncode != 0 and "fiqa.serfiq.model = 'r100'" in proc.stdout + proc.stderr
    cfg = tiny_config(next(iter(demo_sources.values())).parent)
    cfg["cams"]["gradcam"].update(method="layercam", target="self_cosine")
    proc = snakemake(tmp_path, "-n", config=cfg)
    assert proc.returncode != 0 and "cams.gradcam.target = self_cosine" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout[-2000:]


def test_every_fiqa_method_runs_through_the_workflow(tmp_path, demo_sources):
    """All computed methods (FaceQAN with small k and l) and an import, up to the validation table."""
    from amva.quality import METHODS

    (tmp_path / "photos").mkdir()
    for path in demo_sources.values():
        (tmp_path / "photos" / path.name).symlink_to(path)
    write_scores(tmp_path / "scores_tiny.txt")
    cfg = tiny_config(tmp_path / "photos")
    cfg["fiqa"] = {name: {"method": name} for name, m in METHODS.items() if not m.needs_model}
    cfg["fiqa"].update({name: {"method": name, "model": "sface"} for name, m in METHODS.items() if m.needs_model})
    cfg["fiqa"]["serfiq"]["T"] = 10
    cfg["fiqa"]["faceqan"].update(k=2, l=2)
    cfg["fiqa"]["imported"] = {"method": "scores_file", "path": str(tmp_path / "scores_{dataset}.txt")}
    proc = snakemake(tmp_path, "--cores", "2", "results/tiny/quality/validation.csv", config=cfg)
    assert proc.returncode == 0, proc.stdout[-3000:]
    table = pd.read_csv(tmp_path / "results/tiny/quality/validation.csv")
    assert set(table["fiqa"]) == set(cfg["fiqa"])
    overall = table[table["degradation"] == "all"].set_index("fiqa")
    assert (overall["images"] == 20).all()
    assert overall.loc["embedding_norm", "spearman"] < 0  # the norm falls along the ladder
    assert overall.loc["faceqan", "spearman"] < 0


def copy_faces_and_bins(run, workdir) -> dict:
    """The tiny run's faces and SER-FIQ bins in ``workdir`` (mtimes kept: not re-made); returns its config."""
    for rel in ["faces.nc", "pairs.nc", "rejected.csv", "quality/serfiq.nc", "bins/serfiq.nc"]:
        (workdir / "results/tiny" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / "results/tiny" / rel, workdir / "results/tiny" / rel)
    return yaml.safe_load((run / "config.yaml").read_text())


def test_every_cam_method_runs_through_the_workflow(run, tmp_path, sface):
    """Score-CAM (binned images, a layer named in the config), Grad-CAM++, LayerCAM and Eigen-CAM
    from the config to the AMVA result; each job's maps equal a direct call of the CAM."""
    from amva.cam import make_cam
    from amva.models import to_tensor

    cfg = copy_faces_and_bins(run, tmp_path)
    cfg["cams"] = {
        "scorecam": {"method": "scorecam", "images": "binned", "fiqa": ["serfiq"], "layer": "body.conv_4.act"},
        "gradcampp": {"method": "gradcampp", "fiqa": ["serfiq"]},
        "layercam": {"method": "layercam", "fiqa": ["serfiq"]},
        "eigencam": {"method": "eigencam", "fiqa": ["serfiq"]},
    }
    targets = [f"results/tiny/sface/{cam}/variation/serfiq.nc" for cam in cfg["cams"]]
    proc = snakemake(tmp_path, "--cores", "2", *targets, config=cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    faces = read_dataset(tmp_path / "results/tiny/faces.nc")
    for name, spec in cfg["cams"].items():
        maps = read_dataset(tmp_path / f"results/tiny/sface/cam/{name}.nc")
        assert maps.attrs["cam_method"] == spec["method"]
        assert maps.attrs["layer"] == spec.get("layer", "body.conv_14.act")
        assert maps.sizes["image"] == (10 if name == "scorecam" else 20)  # HIGH and LOW: one per photo
        ids = maps["image"].values[:2]
        cam = make_cam(sface, spec["method"], layer=spec.get("layer", "auto"))
        direct = cam(to_tensor(faces["pixels"].sel(image=ids).values)).maps.numpy()
        np.testing.assert_allclose(maps["maps"].sel(image=ids).values, direct, atol=1e-4, err_msg=name)
        assert read_dataset(tmp_path / f"results/tiny/sface/{name}/variation/serfiq.nc")["d_amv"].notnull().all()


def test_cam_shards_gather_to_the_maps_of_one_job(run, tmp_path):
    """Shards of 7 (3 jobs: 7, 7, 6 images) and of 10 for the 8 binned images (2 jobs) gather to one job's maps."""
    cfg = copy_faces_and_bins(run, tmp_path)
    cfg["shard_size"] = 7
    cfg["cams"]["gradcam_binned"]["shard_size"] = 10
    targets = [f"results/tiny/sface/cam/{cam}.nc" for cam in ("gradcam", "gradcam_binned")]
    proc = snakemake(tmp_path, "--cores", "2", *targets, config=cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", proc.stdout + proc.stderr, flags=re.M)
    assert sorted(jobs) == ["cam"] * 5 + ["cam_gather"] * 2
    assert not list((tmp_path / "results").rglob("shard-*.nc"))  # temporary, removed once gathered
    for target in targets:
        one, sharded = read_dataset(run / target), read_dataset(tmp_path / target)
        assert set(one.attrs) == set(sharded.attrs) and one.attrs["layer"] == sharded.attrs["layer"]
        # batches of 7 vs 8 images take other oneDNN kernels: maps differ in the last float bits (~1e-6),
        # which can move a value stored packed (steps of 1/65534) by one step
        xr.testing.assert_allclose(one.drop_attrs(), sharded.drop_attrs(), rtol=0, atol=2 / 65534)

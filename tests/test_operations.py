"""Operations: what the SLURM profile requests, what a config change re-runs, and surviving faults.

Everything runs the real Snakemake engine. Dry runs (``-n``) against the shared tiny run
(``tiny_run``) show which jobs a change schedules and what each would ask a cluster for;
one extra real run is killed mid-job and resumed.
"""

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import ROOT, Job, dry_run, parse_jobs, snakemake, tiny_config

from amva.io import read_dataset, write_dataset

SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"
MODEL_RULES = ("embeddings", "cam", "quality", "trust")
# rules that only draw or tabulate finished results
REPORT_RULES = {"figures", "trust_figures", "edc_chart", "region_table", "summary", "quality_summary", "all"}


def rules(jobs: list[Job]) -> set[str]:
    return {job.rule for job in jobs}


def without_time(ds: xr.Dataset) -> xr.Dataset:
    """A result without its creation time, the one attribute two identical runs differ in."""
    out = ds.copy()
    del out.attrs["amva_created"]
    return out


# ---------------------------------------------------------------- SLURM profile


@pytest.fixture(scope="module")
def profile() -> dict:
    return yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())


def slurm_jobs(tiny_run: Path, *args: str) -> dict[str, list[Job]]:
    """Every job of the tiny config (all re-run except the faces checkpoint), by rule, as the profile submits them."""
    forced = ("--forcerun", "embeddings", "cam", "quality", "image_quality", "import_scores")
    jobs = dry_run(tiny_run, *args, "--workflow-profile", str(SLURM_PROFILE), *forced)
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    return by_rule


def test_slurm_profile_requests_gpus_for_model_jobs_and_defaults_for_the_rest(tiny_run, profile):
    assert profile["executor"] == "slurm"  # the plugin must load for the profile to parse at all
    jobs = slurm_jobs(tiny_run)
    expected = {"embeddings", "cam", "cam_gather", "trust", "quality", "image_quality", "bins", "variation", "edc"}
    assert expected <= set(jobs)
    defaults = profile["default-resources"]
    for rule, rule_jobs in jobs.items():
        for job in rule_jobs:
            res = job.resources
            assert res.get("runtime") and res.get("mem_mb"), f"{rule} lacks runtime/mem_mb: the plugin would warn"
            if rule in MODEL_RULES:
                wanted = profile["set-resources"][rule]
                assert res["gpu"] == "1" and res["cpus_per_gpu"] == str(wanted["cpus_per_gpu"]), rule
                assert res["slurm_partition"] == wanted["slurm_partition"] == "gpu", rule
                assert int(res["mem_mb"]) == wanted["mem_mb"] > defaults["mem_mb"], rule
                assert int(res["runtime"]) == wanted["runtime"] > defaults["runtime"], rule
                assert "cpus_per_task" not in res  # it would override cpus_per_gpu in the plugin
            else:
                assert "gpu" not in res and "cpus_per_gpu" not in res, rule
                assert res["slurm_partition"] == defaults["slurm_partition"] == "cpu", rule
                assert int(res["mem_mb"]) == defaults["mem_mb"] and int(res["runtime"]) == defaults["runtime"], rule


def test_slurm_resources_are_overridden_from_the_command_line(tiny_run, profile):
    jobs = slurm_jobs(
        tiny_run,
        "results/tiny/sface/cam/gradcam.nc",  # targets first: options like --set-resources take several values
        "results/tiny/bins/serfiq.nc",
        "--set-resources",
        "cam:slurm_partition=a100",
        "cam:runtime=30",
        "--default-resources",
        "slurm_partition=short",
        "mem_mb=2000",
        "runtime=15",
    )
    assert set(jobs) == {"cam", "cam_gather", "quality", "bins"}
    cam = jobs["cam"][0].resources
    assert cam["slurm_partition"] == "a100" and cam["runtime"] == "30" and cam["gpu"] == "1"
    bins = jobs["bins"][0].resources
    assert (bins["slurm_partition"], bins["mem_mb"], bins["runtime"]) == ("short", "2000", "15")


# ---------------------------------------------------------------- software environments


def _pins(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        if "==" in req:
            name, version = req.split("==")
            out[name.strip().lower()] = version.split("+")[0]  # torch's +cpu label names the build, not the version
    return out


@pytest.mark.parametrize("env", ["amva.yaml", "amva-gpu.yaml"])
def test_conda_envs_pin_what_pyproject_pins(env):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = yaml.safe_load((ROOT / "envs" / env).read_text())
    pip = next(dep["pip"] for dep in spec["dependencies"] if isinstance(dep, dict))
    assert _pins(pip) == _pins(project["dependencies"])
    assert "python =3.11" in spec["dependencies"]
    torch = next(req for req in pip if req.startswith("torch=="))
    assert torch.endswith("+cpu") == (env == "amva.yaml")


# ---------------------------------------------------------------- incremental re-computation


def _report(cfg: dict) -> None:
    cfg["report"] = {"gallery": 4, "colormap": "magma"}


def _bins(cfg: dict) -> None:
    cfg["bins"]["k"] = 3


def _new_fiqa(cfg: dict) -> None:
    cfg["fiqa"]["dynamic_range"] = {"method": "ofiq_dynamic_range"}


@pytest.mark.parametrize("change", [None, _report, _bins, _new_fiqa], ids=lambda c: getattr(c, "__name__", "none"))
def test_a_config_change_reruns_only_what_depends_on_it(tiny_run, change):
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    if change is None:
        assert dry_run(tiny_run) == []  # the finished tiny run is up to date
        return
    change(cfg)
    jobs = dry_run(tiny_run, config=cfg, name=f"config{change.__name__}.yaml")
    scheduled = rules(jobs)
    binned_cams = {name for name, spec in cfg["cams"].items() if spec.get("images") == "binned"}
    if change is _report:
        assert "figures" in scheduled and scheduled <= REPORT_RULES
    elif change is _bins:
        # bins feed the AMVA statistics, their figures, the CAMs that map binned images only, and the
        # trust checks (which run on the binned images)
        assert {"bins", "variation", "figures", "trust"} <= scheduled
        assert scheduled <= {"bins", "variation", "cam", "cam_gather", "trust"} | REPORT_RULES
        assert {job.wildcards["cam"] for job in jobs if job.rule in ("cam", "cam_gather")} == binned_cams
    else:
        assert {"image_quality", "bins", "edc", "variation", "figures"} <= scheduled  # dynamic range needs no GPU
        # a CAM analysed for every FIQA method checks its maps on the new method's binned images too
        assert scheduled <= {"image_quality", "bins", "edc", "variation", "trust"} | REPORT_RULES
        # the other FIQA methods' analyses re-run only for the CAM whose trust check now covers more images
        # (its null maps and faithfulness change by value); nothing else of theirs re-runs
        trusted = {job.wildcards["cam"] for job in jobs if job.rule == "trust"}
        others = [job for job in jobs if job.wildcards.get("fiqa", "dynamic_range") != "dynamic_range"]
        assert trusted == {"gradcam"} and {job.rule for job in others} <= {"variation", "figures"}
        assert {job.wildcards["cam"] for job in others} == trusted


# ---------------------------------------------------------------- faults

CAM_TARGET = "results/tiny/sface/cam/gradcam.nc"
FAULT_TARGETS = [CAM_TARGET, "results/small/faces.nc"]


def _fault_config(photos: Path) -> dict:
    """The tiny config (same photo folder, so the same entries) plus a second small dataset."""
    cfg = tiny_config(photos)
    cfg["datasets"]["small"] = {"format": "demo", "sources": str(photos), "severities": [3], "degradations": ["jpeg"]}
    return cfg


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the job to kill had started"
        assert time.monotonic() < deadline, "the job to kill did not start"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def killed(tmp_path_factory, tiny_run) -> dict:
    """A run whose Grad-CAM job is killed (SIGKILL to Snakemake and the job) while it computes the maps.

    Returns the working directory and what was on disk right after the kill.
    """
    workdir = tmp_path_factory.mktemp("killed")
    (workdir / "config.yaml").write_text(yaml.safe_dump(_fault_config(tiny_run / "photos")))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml"]
    log = workdir / "logs/cam/tiny/sface/gradcam/shard-0.log"
    with open(workdir / "killed.log", "w") as out:
        proc = subprocess.Popen(
            [*cmd, "--cores", "2", *FAULT_TARGETS],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for(proc, lambda: log.exists() and "GradCAM" in log.read_text())  # its progress bar: maps being made
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
    files = sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*") if p.is_file())
    return {"workdir": workdir, "files": files, "log": log.read_text()}


def test_a_killed_job_leaves_no_file_that_looks_complete(killed):
    workdir = killed["workdir"]
    assert "GradCAM" in killed["log"] and "Traceback" not in killed["log"]  # it was killed while computing
    visible = [p for p in killed["files"] if not p.name.startswith(".")]
    assert not [p for p in visible if "sface" in p.parts]  # no maps, no shard
    for path in visible:  # whatever else is there was finished before the kill
        if path.suffix == ".nc":
            read_dataset(workdir / path)
    # Snakemake knows the job was running: the hard kill left its lock and incomplete marker
    assert list((workdir / ".snakemake/locks").iterdir()) and list((workdir / ".snakemake/incomplete").iterdir())


@pytest.fixture(scope="module")
def resumed(killed) -> Path:
    """The killed run, unlocked with ``make unlock CONFIG=… DIR=…`` and finished with ``--rerun-incomplete``."""
    workdir = killed["workdir"]
    locked = snakemake(workdir, "--cores", "2", *FAULT_TARGETS)
    assert locked.returncode != 0 and "LockException" in locked.stderr
    unlock = ["make", "unlock", f"CONFIG={workdir / 'config.yaml'}", f"DIR={workdir}"]
    proc = subprocess.run(unlock, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    locks = workdir / ".snakemake/locks"
    assert not locks.exists() or not list(locks.iterdir())
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete", *FAULT_TARGETS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rules(parse_jobs(proc.stdout + proc.stderr)) == {"cam", "cam_gather"}  # what had finished stays
    return workdir


def test_resumed_run_equals_an_uninterrupted_run(resumed, tiny_run):
    """Same config entries, separate runs (one killed and resumed): identical arrays and provenance but the time."""
    for rel in ["results/tiny/faces.nc", "results/tiny/pairs.nc", CAM_TARGET]:
        xr.testing.assert_identical(
            without_time(read_dataset(resumed / rel)), without_time(read_dataset(tiny_run / rel))
        )


def test_changing_one_dataset_reruns_only_its_jobs(resumed):
    cfg = yaml.safe_load((resumed / "config.yaml").read_text())
    cfg["datasets"]["tiny"]["severities"] = [2]
    jobs = dry_run(resumed, *FAULT_TARGETS, config=cfg, name="config_tiny_changed.yaml")
    assert {job.wildcards.get("dataset") for job in jobs} == {"tiny"}  # nothing of small
    assert {"faces", "cam_gather"} <= rules(jobs)  # tiny's maps follow its faces


def test_truncated_and_foreign_inputs_fail_naming_the_file(resumed):
    """A job reading a cut-off netCDF or someone else's netCDF stops with the path and what to do."""
    faces = resumed / "results/small/faces.nc"
    faces.write_bytes(faces.read_bytes()[:5000])
    foreign = resumed / "results/tiny/quality/sharpness.nc"  # a valid netCDF, but not a quality file
    foreign.parent.mkdir()
    xr.Dataset({"score": ("n", np.arange(20.0))}).to_netcdf(foreign)
    targets = ["results/small/quality/sharpness.nc", "results/tiny/bins/sharpness.nc"]
    proc = snakemake(resumed, "--cores", "2", "--keep-going", *targets)
    assert proc.returncode != 0
    cut = (resumed / "logs/image_quality/small/sharpness.log").read_text()
    assert f"{faces.relative_to(resumed)}: not a readable netCDF file, truncated or corrupt" in cut
    alien = (resumed / "logs/bins/tiny/sharpness.log").read_text()
    assert f"{foreign.relative_to(resumed)}: lacks quality (it holds score): not an amva result" in alien
    assert not any((resumed / t).exists() for t in targets)


def test_a_write_killed_midway_leaves_only_a_hidden_part(tmp_path):
    """SIGKILL while write_dataset is writing: no target, only a hidden ``.part``; the re-run writes the target."""
    target = tmp_path / "maps.nc"
    writer = (
        "import sys, numpy as np, xarray as xr; from amva.io import write_dataset; "
        "write_dataset(xr.Dataset({'maps': (('image', 'y', 'x'), np.ones((8000, 112, 112), 'float32'))}), sys.argv[1])"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(target)])
    try:
        _wait_for(proc, lambda: any(tmp_path.glob(".maps.nc.*")), timeout=60)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    [leftover] = tmp_path.iterdir()
    assert not target.exists() and leftover.name.startswith(".maps.nc.") and leftover.suffix == ".part"
    write_dataset(xr.Dataset({"maps": ("image", np.zeros(3))}), target)  # the re-run
    assert read_dataset(target, required=("maps",)).sizes["image"] == 3
    other = tmp_path / "other.txt"
    other.write_text("")  # a file made the ordinary way: the result must be as readable as it
    assert oct(target.stat().st_mode & 0o777) == oct(other.stat().st_mode & 0o777)


def test_hdf5_file_locking_is_off_for_amva_readers(tmp_path):
    """A file that another process holds open for writing, with HDF5's lock: amva still reads it.

    On some NFS and Lustre mounts the lock call itself fails: with locking on, no file could be opened there.
    """
    path = write_dataset(xr.Dataset({"quality": ("image", np.arange(3.0))}), tmp_path / "q.nc")
    locked = {**os.environ, "HDF5_USE_FILE_LOCKING": "TRUE"}
    hold = "import sys, netCDF4; d = netCDF4.Dataset(sys.argv[1], 'a'); print('open', flush=True); input()"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(path)], env=locked, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        read = "import sys; from amva.io import read_dataset; print(float(read_dataset(sys.argv[1])['quality'].sum()))"
        default = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
        amva = subprocess.run([sys.executable, "-c", read, str(path)], env=default, capture_output=True, text=True)
        assert amva.returncode == 0 and amva.stdout.strip() == "3.0", amva.stderr[-2000:]
        # the control: a user who sets locking on keeps it (setdefault), and then the read is refused
        refused = subprocess.run([sys.executable, "-c", read, str(path)], env=locked, capture_output=True, text=True)
        assert refused.returncode != 0 and "q.nc: not a readable netCDF file" in refused.stderr
    finally:
        holder.communicate("\n", timeout=30)

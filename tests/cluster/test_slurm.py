"""The workflow on a real one-node SLURM cluster (start-slurm.sh) through snakemake-executor-plugin-slurm.

Not part of ``make test``: ``make test-cluster`` runs these (minutes). Every run uses a copy of
``workflow/profiles/slurm-cpu`` fitted to the node (``slurm_cluster.site_profile``). With accounting
(slurmdbd over MariaDB) first: a complete run, its results against a local run, what a second run
and a changed ``bins.k`` submit, an ``scancel``, and jobs killed over their memory or time limit.
Then without accounting (sacct disabled): an ``scancel`` again.
"""

import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml
from conftest import dry_run, link_photos, snakemake, tiny_config
from slurm_cluster import ACCOUNT, Cluster, Run, run, site_profile, with_resources, write_profile

from amva.io import read_dataset

MODEL_RULES = {"embeddings", "cam", "quality", "trust"}
BINS_AND_DOWNSTREAM = {
    "bins",
    "variation",
    "figures",
    "trust",
    "trust_figures",
    "quality_summary",
    "region_table",
    "summary",
}
CAM_TARGET = "results/tiny/sface/cam/gradcam.nc"
SHARPNESS = "results/tiny/quality/sharpness.nc"
# when, and at which commit of this checkout, a job ran: the only attributes two runs may differ in
RUN_ATTRS = ("amva_created", "amva_git_commit")


def cluster_config(photos: Path) -> dict:
    """The tiny config cut down: one severity, two degradations, SFace, SER-FIQ and sharpness, Grad-CAM."""
    cfg = tiny_config(photos)
    cfg["datasets"]["tiny"]["degradations"] = ["gaussian_blur", "occlusion"]
    cfg["fiqa"] = {name: cfg["fiqa"][name] for name in ("serfiq", "sharpness")}
    cfg["cams"] = {"gradcam": cfg["cams"]["gradcam"]}
    cfg["bins"] = {"mode": "high_low", "k": 3}
    return cfg


def comparable(path: Path) -> xr.Dataset:
    ds = read_dataset(path)
    ds.attrs = {key: value for key, value in ds.attrs.items() if key not in RUN_ATTRS}
    return ds


def assert_same_results(workdir: Path, reference: Path, files: list[str] | None = None) -> None:
    """Every netCDF and CSV result (or the given ones) equal to the reference run's: arrays, coordinates, attributes."""
    if files is None:
        found = {
            side: sorted(str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.suffix in (".nc", ".csv"))
            for side, root in (("here", workdir), ("reference", reference))
        }
        assert found["here"] == found["reference"]
        files = found["here"]
    for rel in files:
        if rel.endswith(".nc"):
            xr.testing.assert_identical(comparable(workdir / rel), comparable(reference / rel))
        else:
            assert (workdir / rel).read_text() == (reference / rel).read_text(), rel


def prepare(workdir: Path, config: dict, profile: dict) -> Path:
    """``workdir`` with ``config.yaml`` and the profile; returns the profile's folder."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return write_profile(workdir / "profile", profile)


def assert_resubmitted(result: Run, rule: str, cancelled_state: str) -> None:
    """The run's ``rule`` job was cancelled, reported failed, submitted again and completed; the run completed."""
    assert result.returncode == 0, result.output[-3000:]
    assert [job.state for job in result.jobs if job.rule == rule] == [cancelled_state, "COMPLETED"]
    assert "SLURM status is: 'CANCELLED'" in result.output and "Trying to restart job" in result.output
    assert {job.name for job in result.jobs} == {result.run_id}


@pytest.fixture(scope="session")
def cluster(request) -> Cluster:
    """The test cluster; its timings go to the terminal at the end of the session."""
    cluster = Cluster()
    yield cluster
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter and capture and cluster.timings:
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_sep("-", "SLURM cluster timings")
            for what, seconds in cluster.timings.items():
                reporter.write_line(f"{what}: {seconds:.0f} s")


@pytest.fixture(scope="module")
def photos(tmp_path_factory, demo_sources) -> Path:
    return link_photos(tmp_path_factory.mktemp("photos"), demo_sources)


@pytest.fixture(scope="module")
def node(cluster) -> tuple[int, int]:
    cluster.ensure("accounting")
    return cluster.node()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, cluster, photos) -> Path:
    """The same config run locally (two cores), the reference for the cluster's results."""
    workdir = tmp_path_factory.mktemp("local")
    started = time.monotonic()
    proc = snakemake(workdir, "--cores", "2", config=cluster_config(photos))
    cluster.timings["the same run locally"] = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, cluster, node, photos) -> tuple[Path, Path, Run, dict]:
    """The complete run with accounting: its working directory, profile folder, run and the profile's settings."""
    cluster.ensure("accounting")
    profile = site_profile(*node)
    workdir = tmp_path_factory.mktemp("slurm")
    folder = prepare(workdir, cluster_config(photos), profile)
    result = run(cluster, workdir, folder)
    cluster.timings[f"workflow run (accounting), {len(result.jobs)} jobs"] = result.seconds
    assert result.returncode == 0, result.output[-3000:]
    return workdir, folder, result, profile


def test_every_job_but_the_local_rule_is_a_slurm_job_of_the_run(slurm_run):
    _, _, result, _ = slurm_run
    assert result.executed(local=True) == ["all"]  # the target rule only collects files
    remote = result.executed()
    assert {"faces", "embeddings", "quality", "image_quality", "cam", "bins", "variation", "edc"} <= set(remote)
    assert result.rules() == remote  # one sacct entry per job
    assert {job.name for job in result.jobs} == {result.run_id}  # named by the run
    assert {job.state for job in result.jobs} == {"COMPLETED"}
    assert {job.account for job in result.jobs} == {ACCOUNT}  # the profile's account, not a guess


def test_the_cpu_profile_asks_for_cpus_and_memory_only(slurm_run):
    _, _, result, profile = slurm_run
    defaults = profile["default-resources"]
    for job in result.jobs:
        assert not any(key.startswith("gres") for key in job.tres), (job.rule, job.tres)  # no GPU
        if job.rule in MODEL_RULES:
            wanted = profile["set-resources"][job.rule]
            assert int(job.tres["cpu"]) == profile["set-threads"][job.rule], job.rule
            assert job.tres["mem"] == f"{wanted['mem_mb']}M", job.rule
        else:
            assert job.tres["mem"] == f"{defaults['mem_mb']}M", job.rule


def test_results_equal_those_of_a_local_run(slurm_run, local_run):
    workdir, _, _, _ = slurm_run
    assert_same_results(workdir, local_run)


def test_a_second_invocation_submits_nothing(cluster, slurm_run):
    workdir, folder, _, _ = slurm_run
    again = run(cluster, workdir, folder)
    assert again.returncode == 0, again.output[-3000:]
    assert "Nothing to be done" in again.output
    assert again.jobs == []


def test_changing_bins_k_submits_only_the_bins_and_what_follows(cluster, slurm_run):
    workdir, folder, _, _ = slurm_run
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["bins"]["k"] = 2
    planned = sorted(job.rule for job in dry_run(workdir, config=cfg, name="config_k2.yaml") if job.rule != "all")
    changed = run(cluster, workdir, folder, name="config_k2.yaml")
    cluster.timings[f"bins.k changed, {len(changed.jobs)} jobs"] = changed.seconds
    assert changed.returncode == 0, changed.output[-3000:]
    assert changed.rules() == changed.executed() == planned  # new sacct entries: the jobs the change needs
    assert set(planned) <= BINS_AND_DOWNSTREAM and planned.count("bins") == len(cfg["fiqa"])


def test_a_cancelled_job_is_resubmitted_and_the_run_completes(cluster, slurm_run, local_run):
    """scancel on a running Grad-CAM job: squeue reports it CANCELLED, Snakemake submits it again (retries: 1)."""
    workdir, folder, _, _ = slurm_run
    result = run(cluster, workdir, folder, CAM_TARGET, "--forcerun", "cam", cancel="cam")
    cluster.timings["scancel run (accounting): from the scancel to the end"] = result.after_cancel
    # sacct names who cancelled it: the state the plugin's sacct check would take for "still running"
    assert_resubmitted(result, "cam", cancelled_state="CANCELLED by 0")
    assert_same_results(workdir, local_run, [CAM_TARGET])


def test_jobs_over_their_memory_or_time_limit_fail_naming_the_reason(cluster, slurm_run):
    """The sharpness job again with 200 MB, and a new Score-CAM job with one minute, side by side (no retries).

    Without cgroups (none here: the container's cgroups are not SLURM's to take) memory is enforced by
    polling (JobAcctGatherParams=OverMemoryKill): the job ends FAILED, not OUT_OF_MEMORY, and its SLURM
    log, which Snakemake names, says "Exceeded job memory limit". The time limit ends a job as TIMEOUT.
    The last test of the complete run's directory: it leaves it without the sharpness scores.
    """
    workdir, _, _, profile = slurm_run
    cluster.ensure("accounting")
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["cams"]["scorecam"] = {"method": "scorecam", "target": "self_cosine"}  # ~10 s per image: minutes
    limited = with_resources(profile, image_quality={"mem_mb": 200}, cam={"runtime": 1})
    limited["retries"] = 0
    limited["set-threads"]["cam"] = 1  # both jobs at once on two CPUs
    folder = write_profile(workdir / "limited", limited)
    (workdir / "config_scorecam.yaml").write_text(yaml.safe_dump(cfg))
    targets = [SHARPNESS, "results/tiny/sface/cam/scorecam.nc"]
    result = run(cluster, workdir, folder, *targets, "--forcerun", "image_quality", name="config_scorecam.yaml")
    cluster.timings["memory and time limits run"] = result.seconds
    assert result.returncode != 0
    jobs = {job.rule: job for job in result.jobs}
    assert sorted(jobs) == result.rules() == ["cam", "image_quality"]
    memory, timed_out = jobs["image_quality"], jobs["cam"]
    assert (memory.state, timed_out.state) == ("FAILED", "TIMEOUT")
    assert f"SLURM-job '{memory.id}' failed, SLURM status is: 'FAILED'" in result.output
    assert "Exceeded job memory limit" in result.slurm_log(memory)
    assert f"SLURM-job '{timed_out.id}' failed, SLURM status is: 'TIMEOUT'" in result.output
    assert "DUE TO TIME LIMIT" in result.slurm_log(timed_out)
    assert not any((workdir / target).exists() for target in targets)


def test_without_accounting_a_cancelled_job_is_resubmitted_and_the_run_completes(
    cluster, node, photos, local_run, tmp_path
):
    """slurmctld without slurmdbd: sacct is disabled, the squeue status check still sees every state."""
    cluster.ensure("none")
    sacct = subprocess.run(["sacct"], capture_output=True, text=True)
    assert sacct.returncode != 0 and "accounting storage is disabled" in sacct.stderr + sacct.stdout
    # the same profile: the plugin cannot check the account here (sacctmgr needs slurmdbd) and passes it on
    folder = prepare(tmp_path, cluster_config(photos), site_profile(*node))
    result = run(cluster, tmp_path, folder, SHARPNESS, cancel="image_quality")
    cluster.timings["scancel run (no accounting)"] = result.seconds
    cluster.timings["scancel run (no accounting): from the scancel to the end"] = result.after_cancel
    assert_resubmitted(result, "image_quality", cancelled_state="CANCELLED")
    assert result.rules() == result.executed() == ["faces", "image_quality", "image_quality"]
    assert {job.account for job in result.jobs} == {ACCOUNT}
    assert_same_results(tmp_path, local_run, ["results/tiny/faces.nc", SHARPNESS])

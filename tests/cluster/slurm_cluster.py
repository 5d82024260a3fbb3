"""The one-node SLURM cluster of the cluster tests: started by start-slurm.sh, queried with sacct or squeue.

A run of the workflow on it goes through snakemake-executor-plugin-slurm with a copy of
``workflow/profiles/slurm-cpu`` fitted to the node, the way a site copies the profile.
"""

import copy
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

START = Path(__file__).with_name("start-slurm.sh")
CPU_PROFILE = ROOT / "workflow" / "profiles" / "slurm-cpu"
ACCOUNT = "amva-test"  # what start-slurm.sh registers for root
NODE = "amva-node"
STATUS_DELAY = 5  # seconds before the first status check (the profile's 40 s slows a test of 30 short jobs)
_RUN_ID = re.compile(r"^SLURM run ID: (\S+)$", re.MULTILINE)
_JOB = re.compile(r"^(local)?(?:rule|checkpoint) (\w+):$", re.MULTILINE)


@dataclass(frozen=True)
class SlurmJob:
    """One SLURM job as the cluster recorded it (sacct with accounting, squeue without)."""

    id: int
    name: str  # the plugin names every job of a run by the run's id
    rule: str  # from the plugin's comment rule_<rule>[_wildcards_<values>]
    state: str
    account: str
    tres: dict[str, str] = field(default_factory=dict)  # requested resources (sacct only): cpu, mem, gres/gpu …


def _rule(comment: str) -> str:
    return comment.removeprefix("rule_").split("_wildcards_")[0]


class Cluster:
    """The test cluster in one of its set-ups, ``accounting`` (slurmdbd) or ``none``, started on demand."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self.timings: dict[str, float] = {}  # what took how long (seconds), for the test report
        self._started: set[str] = set()
        self._failures: dict[str, str] = {}  # mode -> why it did not start (tried once)

    def ensure(self, mode: str) -> None:
        """Start the cluster in ``mode`` unless it already runs so; skip (or fail in CI) where it cannot start."""
        if self.mode == mode:
            return
        flag = "--accounting" if mode == "accounting" else "--no-accounting"
        started = time.monotonic()
        if mode not in self._failures:
            try:
                proc = subprocess.run([str(START), flag], capture_output=True, text=True, timeout=900)
                if proc.returncode:
                    self._failures[mode] = f"exit {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-1500:]}"
            except (OSError, subprocess.TimeoutExpired) as error:
                self._failures[mode] = str(error)
        if mode in self._failures:
            message = f"the one-node SLURM cluster ({mode}) could not start: {self._failures[mode]}"
            if os.environ.get("AMVA_CLUSTER_REQUIRED"):
                pytest.fail(message)
            pytest.skip(message)
        self.timings[f"cluster start ({mode}{', again' if mode in self._started else ''})"] = time.monotonic() - started
        self._started.add(mode)
        self.mode = mode

    def node(self) -> tuple[int, int]:
        """The node's CPUs and memory (MB) as slurmd registered them."""
        fields = dict(
            item.split("=", 1) for item in _check(["scontrol", "show", "node", NODE, "-o"]).split() if "=" in item
        )
        return int(fields["CPUTot"]), int(fields["RealMemory"])

    def queue(self, after: int = 0) -> list[SlurmJob]:
        """The jobs above id ``after`` that slurmctld knows: live, and finished ones for MinJobAge (300 s)."""
        return _jobs(["squeue", "--states=all", "-h", "-o", "%i|%j|%k|%T|%a"], after)

    def jobs(self, after: int = 0) -> list[SlurmJob]:
        """The jobs above id ``after`` as the cluster recorded them, in submission order.

        With accounting: sacct, once it agrees with slurmctld (slurmdbd lags by a few seconds).
        """
        if self.mode != "accounting":
            return self.queue(after)
        fields = "JobIDRaw,JobName,Comment,State,Account,ReqTRES"
        deadline = time.monotonic() + 60
        while True:
            live = self.queue(after)
            recorded = _jobs(["sacct", "-X", "-P", "-n", "-S", "now-1days", "-o", fields], after)
            states = {job.id: job.state for job in recorded}  # sacct adds who cancelled: "CANCELLED by 0"
            if all(states.get(job.id, "").startswith(job.state) for job in live) or time.monotonic() > deadline:
                return recorded
            time.sleep(1)

    def last_id(self) -> int:
        """The newest job's id (slurmctld knows the newest, sacct the older ones)."""
        jobs = self.queue() + (self.jobs() if self.mode == "accounting" else [])
        return max((job.id for job in jobs), default=0)


def _jobs(cmd: list[str], after: int) -> list[SlurmJob]:
    """Parse ``id|name|comment|state|account[|tres]`` lines, keeping the jobs above id ``after``."""
    jobs = []
    for line in _check(cmd).splitlines():
        job_id, name, comment, state, account, *tres = line.split("|")
        if int(job_id) > after:
            pairs = (item.split("=", 1) for item in tres[0].split(",")) if tres and tres[0] else ()
            jobs.append(SlurmJob(int(job_id), name, _rule(comment), state, account, dict(pairs)))
    return sorted(jobs, key=lambda job: job.id)


def _check(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def site_profile(cpus: int, mem_mb: int, account: str = ACCOUNT) -> dict:
    """The slurm-cpu profile as a site copies it for this node: threads and memory that fit, its account.

    Memory is capped at the node's share per CPU times the job's threads, so jobs still run side by side.
    """
    profile = yaml.safe_load((CPU_PROFILE / "config.yaml").read_text())
    per_cpu = mem_mb // cpus
    threads = profile["set-threads"] = {rule: min(n, cpus) for rule, n in profile["set-threads"].items()}
    for rule, resources in profile["set-resources"].items():
        resources["mem_mb"] = min(resources["mem_mb"], per_cpu * threads.get(rule, 1))
    defaults = profile["default-resources"]
    defaults["mem_mb"] = min(defaults["mem_mb"], per_cpu)
    defaults["slurm_account"] = account  # the plugin's guess fails (README: Account)
    profile["slurm-init-seconds-before-status-checks"] = STATUS_DELAY
    return profile


def write_profile(directory: Path, profile: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


@dataclass
class Run:
    """One Snakemake invocation through the plugin, and the SLURM jobs it submitted."""

    returncode: int
    output: str
    jobs: list[SlurmJob]
    seconds: float  # wall time of the invocation
    after_cancel: float | None = None  # seconds from the scancel to the end of the run

    @property
    def run_id(self) -> str | None:
        found = _RUN_ID.search(self.output)
        return found and found.group(1)

    def executed(self, local: bool = False) -> list[str]:
        """The rules of the jobs Snakemake started, remote (SLURM) ones or local ones, sorted."""
        return sorted(rule for is_local, rule in _JOB.findall(self.output) if bool(is_local) == local)

    def rules(self) -> list[str]:
        """The rules of the submitted SLURM jobs, sorted."""
        return sorted(job.rule for job in self.jobs)

    def slurm_log(self, job: SlurmJob) -> str:
        """The SLURM log of ``job`` (its stdout and stderr), whose path Snakemake prints when it fails."""
        path = re.search(rf"(\S+/{job.id}\.log)", self.output)
        assert path, f"Snakemake's output names no SLURM log for job {job.id}"
        return Path(path.group(1).rstrip(",")).read_text()


def snakemake_command(profile: Path, name: str = "config.yaml") -> list[str]:
    """Snakemake on the cluster: the plugin with ``profile``, on the config file ``name``."""
    snakefile = str(ROOT / "Snakefile")
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        snakefile,
        "--configfile",
        name,
        "--workflow-profile",
        f"{profile}",
    ]


def run(
    cluster: Cluster,
    workdir: Path,
    profile: Path,
    *args: str,
    name: str = "config.yaml",
    cancel: str | None = None,
    timeout: float = 900,
) -> Run:
    """Run Snakemake through the plugin in ``workdir``, and return the run with the SLURM jobs it submitted.

    With ``cancel``, the first job of that rule is cancelled (scancel) as soon as it runs.
    """
    before = cluster.last_id()
    log = workdir / f"snakemake-{before}.log"
    started = time.monotonic()
    cancelled = None
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*snakemake_command(profile, name=name), *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            if cancel:
                victim = _wait_until_running(cluster, proc, cancel, before, started + timeout)
                subprocess.run(["scancel", str(victim.id)], check=True)
                cancelled = time.monotonic()
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Snakemake cancels its SLURM jobs on Ctrl-C
                proc.wait(timeout=120)
    ended = time.monotonic()
    jobs = cluster.jobs(after=before)
    return Run(proc.returncode, log.read_text(), jobs, ended - started, cancelled and ended - cancelled)


def _wait_until_running(cluster: Cluster, proc: subprocess.Popen, rule: str, after: int, deadline: float) -> SlurmJob:
    while True:
        running = [job for job in cluster.queue(after) if job.rule == rule and job.state == "RUNNING"]
        if running:
            return running[0]
        assert proc.poll() is None, f"the run ended before a {rule} job ran"
        assert time.monotonic() < deadline, f"no {rule} job ran"
        time.sleep(0.5)


def with_resources(profile: dict, **changes: dict) -> dict:
    """A copy of ``profile`` with the given set-resources entries updated (and the other keys kept)."""
    out = copy.deepcopy(profile)
    for rule, resources in changes.items():
        out["set-resources"].setdefault(rule, {}).update(resources)
    return out

"""Shared fixtures: the demo photos, fetched once per session into a cache dir; one tiny workflow run."""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_PIXELS = ROOT / "tests" / "data" / "demo_pixels.json"
"""The demo ladder's pixel record: every pinned-pixel test reads it, and one command rewrites it:
``python -m amva.datasets.demo record resources/demo tests/data/demo_pixels.json``."""


def demo_pixel_record(template: str = "arcface112") -> dict:
    """The recorded pixels (sha256 per image, per tile and of all) of the default ladder in ``template``."""
    return json.loads(DEMO_PIXELS.read_text())["templates"][template]


@pytest.fixture(scope="session")
def demo_sources() -> dict[str, Path]:
    """name -> path of the demo photos (env AMVA_DEMO_SOURCES, default resources/demo)."""
    from amva.datasets.demo import fetch_sources

    default = Path(__file__).resolve().parents[1] / "resources" / "demo"
    return fetch_sources(Path(os.environ.get("AMVA_DEMO_SOURCES", default)))


@pytest.fixture(scope="session")
def sface():
    """The real SFace model, loaded once."""
    from amva.models.sface import load_sface

    return load_sface()


@pytest.fixture(scope="session")
def demo(demo_sources):
    """The full demo ladder as faces and pairs datasets."""
    from amva.datasets.build import build_dataset

    spec = {"format": "demo", "severities": [1, 2, 3]}
    faces, pairs, rejected = build_dataset(spec, next(iter(demo_sources.values())).parent, seed=0)
    return faces, pairs, rejected


def tiny_config(sources: Path) -> dict:
    """A config small enough for tests (20 images) that still exercises every stage."""
    return {
        "seed": 0,
        "datasets": {
            "tiny": {
                "format": "demo",
                "sources": str(sources),
                "severities": [3],
                "degradations": ["gaussian_blur", "occlusion", "underexposure"],
            }
        },
        "models": {"sface": {"kind": "sface"}},
        "fiqa": {
            "serfiq": {"method": "serfiq", "model": "sface", "T": 20},
            "brisque": {"method": "brisque"},
            "sharpness": {"method": "sharpness"},
            "imported": {"method": "scores_file", "path": str(sources.parent / "scores_{dataset}.txt")},
        },
        "cams": {  # the trust checks for one CAM (each costs a job and its figures)
            "gradcam": {"method": "gradcam", "batch_size": 8, "trust": {"enabled": True}},
            "gradcam_binned": {"method": "gradcam", "images": "binned", "fiqa": ["serfiq"]},
        },
        "bins": {"mode": "matched", "k": 1},  # one HIGH and one LOW image of each of the 5 photos
        "evaluation": {"threshold": {"fnmr": 0.1}},
        "trust": {"enabled": False, "cascade": 2, "faithfulness_images": 6},
    }


TINY_IDS = [
    f"{s}/{k}/{v}"
    for s in ("obama", "obama2", "obama3", "biden", "astronaut")
    for k, v in [("original", 0), ("gaussian_blur", 3), ("occlusion", 3), ("underexposure", 3)]
]


def write_scores(path: Path) -> None:
    """A tool's "path score" file: one line per tiny image, plus one for an image not in the set."""
    rng = np.random.default_rng(0)
    lines = [f"/data/tiny/{i}.png {rng.random():.6f}" for i in TINY_IDS] + ["/data/tiny/elsewhere/x.png 0.5"]
    path.write_text("\n".join(lines) + "\n")


def snakemake(
    workdir: Path, *args: str, config: dict | None = None, name: str = "config.yaml"
) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir`` on the config file ``name`` (written first when given)."""
    if config is not None:
        (workdir / name).write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", name]
    return subprocess.run([*cmd, *args], cwd=workdir, capture_output=True, text=True, timeout=600)


def make_run(work: Path, config: dict, name: str = "my.yaml") -> Path:
    """``make run CONFIG=work/name DIR=work/run CORES=2``, the README's way to run one's own config;
    the run's directory."""
    (work / name).write_text(yaml.safe_dump(config))
    cmd = ["make", "run", f"CONFIG={work / name}", f"DIR={work / 'run'}", "CORES=2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return work / "run"


def link_photos(workdir: Path, demo_sources: dict[str, Path]) -> Path:
    """``workdir/photos`` with the demo photos linked in (a demo dataset's ``sources``)."""
    photos = workdir / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for path in demo_sources.values():
        (photos / path.name).symlink_to(path)
    return photos


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_sources) -> Path:
    """The working directory of one complete run of :func:`tiny_config`, shared by the workflow tests.

    Tests may dry-run other configs in it (``-n``) but must not change its results.
    """
    workdir = tmp_path_factory.mktemp("wf")
    link_photos(workdir, demo_sources)
    write_scores(workdir / "scores_tiny.txt")
    proc = snakemake(workdir, "--cores", "2", config=tiny_config(workdir / "photos"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)


_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_FIELD = re.compile(r"^\s+(wildcards|resources): (.*)$")


def parse_jobs(text: str) -> list[Job]:
    """The jobs of Snakemake's dry-run listing, with their wildcards and resources."""
    jobs: list[Job] = []
    for line in text.splitlines():
        if header := _HEADER.match(line):
            jobs.append(Job(header.group(1)))
        elif jobs and (item := _FIELD.match(line)):
            pairs = (entry.partition("=") for entry in item.group(2).split(", "))
            getattr(jobs[-1], item.group(1)).update({key: value for key, _, value in pairs})
    return jobs


def dry_run(workdir: Path, *args: str, config: dict | None = None, name: str = "config.yaml") -> list[Job]:
    proc = snakemake(workdir, "-n", *args, config=config, name=name)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return parse_jobs(proc.stdout)

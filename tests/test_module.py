"""amva inside another workflow: imported with ``module`` and ``use rule``, run from another folder."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from amva.io import read_dataset


def importing_workflow(work: Path, sources: Path, prefix: str | None = None) -> Path:
    """A lab's Snakefile in ``work`` that imports amva, with amva's config under its own key."""
    amva = {
        "seed": 0,
        "datasets": {"tiny": {"format": "demo", "sources": str(sources), "severities": [3],
                              "degradations": ["gaussian_blur", "occlusion"]}},
        "models": {"sface": {"kind": "sface"}},
        "fiqa": {"sharpness": {"method": "sharpness"}},
        "cams": {"gradcam": {"method": "gradcam"}},
        "bins": {"mode": "matched", "k": 1},
        "statistics": {"n_boot": 100, "n_perm": 100},
    }  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump({"amva": amva, "lab": {"note": "their own keys"}}))
    prefix_line = f'    prefix:\n        "{prefix}"\n' if prefix else ""
    (work / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        f'module amva:\n    snakefile:\n        "{ROOT / "Snakefile"}"\n    config:\n        config["amva"]\n'
        f"{prefix_line}\n\nuse rule * from amva as amva_*\n"
    )
    return work


def snakemake_in(work: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=work, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc


@pytest.fixture(scope="module")
def sources(demo_sources) -> Path:
    return next(iter(demo_sources.values())).parent


def test_a_workflow_that_imports_amva_runs_it_to_the_report(tmp_path, sources):
    work = importing_workflow(tmp_path / "lab", sources)
    snakemake_in(work, "--cores", "2")
    summary = read_dataset(work / "results/tiny/sface/gradcam/variation/sharpness.nc")
    assert summary.sizes["bin"] == 2
    snakemake_in(work, "--report", "report.html")
    html = (work / "report.html").read_text()
    assert "Datasets: tiny" in html and "margin" in html  # the global caption reads amva's own config


def test_with_a_prefix_nothing_is_written_outside_it(tmp_path, sources):
    work = importing_workflow(tmp_path / "lab", sources, prefix="amva-out")
    snakemake_in(work, "--cores", "2")
    outside = sorted(
        str(p.relative_to(work))
        for p in work.rglob("*")
        if p.is_file() and p.parts[len(work.parts)] not in (".snakemake", "amva-out")
    )
    assert outside == ["Snakefile", "config.yaml"]
    assert (work / "amva-out/results/report/summary.html").is_file()
    assert (work / "amva-out/logs/summary/all.log").is_file()

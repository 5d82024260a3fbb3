"""A user's config, as users write it: it replaces the demo, numbers work on the command line,
and key order, style and comments never re-run a job."""

import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, dry_run, snakemake, tiny_config

from amva.schema import canonical, coerce

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def test_command_line_strings_become_the_schemas_types():
    given = {
        "seed": "3",
        "evaluation": {"threshold": {"fmr": "0.1"}, "pauc_limits": ["0.2", "0.25"]},
        "bins": {"mode": "matched", "k": "2"},
        "datasets": {"d": {"format": "folder", "root": "123", "aligned": "true", "limit": "5"}},
        "models": {"m": {"kind": "iresnet", "depth": "50", "weights": "w.pth", "mean": "127.5"}},
        "fiqa": {"q": {"method": "qualityface", "size": "null"}, "r": {"method": "ofiq_dynamic_range"}},
    }
    typed = coerce(given, SCHEMA)
    assert typed["seed"] == 3 and typed["evaluation"]["threshold"]["fmr"] == 0.1
    assert typed["evaluation"]["pauc_limits"] == [0.2, 0.25]
    assert typed["bins"] == {"mode": "matched", "k": 2} and isinstance(typed["bins"]["k"], int)  # a count
    assert typed["datasets"]["d"] == {"format": "folder", "root": "123", "aligned": True, "limit": 5}  # root: a string
    assert typed["models"]["m"]["depth"] == 50 and typed["models"]["m"]["mean"] == 127.5
    assert typed["fiqa"]["q"]["size"] is None and typed["fiqa"]["r"] == {"method": "ofiq_dynamic_range"}
    assert coerce({"bins": {"k": "0.2"}}, SCHEMA)["bins"]["k"] == 0.2  # a fraction
    assert coerce({"seed": "x"}, SCHEMA)["seed"] == "x"  # not a number: left for the schema to refuse


def test_canonical_sorts_every_mapping_and_keeps_lists():
    value = {"b": {"z": 1, "a": [{"y": 2, "x": 1}]}, "a": 0}
    out = canonical(value)
    assert list(out) == ["a", "b"] and list(out["b"]) == ["a", "z"] and list(out["b"]["a"][0]) == ["x", "y"]
    assert out == value


def reordered(value):
    """The same mappings with their keys in reverse order (lists untouched)."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    return [reordered(v) for v in value] if isinstance(value, list) else value


def test_reordered_and_restyled_configs_run_nothing(tiny_run):
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert dry_run(tiny_run) == []  # the shared run is complete
    (tiny_run / "reordered.yaml").write_text(yaml.safe_dump(reordered(cfg), sort_keys=False))
    assert dry_run(tiny_run, name="reordered.yaml") == []
    flow = yaml.safe_dump(cfg, default_flow_style=True, sort_keys=False)
    (tiny_run / "restyled.yaml").write_text("# my settings\n" + flow.replace(", ", ",  # a note\n  ", 3))
    assert yaml.safe_load((tiny_run / "restyled.yaml").read_text()) == cfg
    assert dry_run(tiny_run, name="restyled.yaml") == []


def test_a_number_on_the_command_line_validates_and_reruns_only_what_it_changes(tiny_run):
    jobs = dry_run(tiny_run, "--config", "evaluation={threshold: {fnmr: 0.2}, pauc_limits: [0.2, 0.3]}")
    assert {job.rule for job in jobs} == {"edc", "edc_chart", "summary", "all"}
    assert sum(job.rule == "edc" for job in jobs) == 4  # one per FIQA
    jobs = dry_run(tiny_run, "--config", "statistics={n_perm: 200}")
    assert {job.rule for job in jobs} == {"variation", "figures", "region_table", "summary", "all"}


def test_a_user_config_replaces_the_demo(tmp_path, demo_sources):
    """Run where config/config.yaml (the demo) exists, as from a checkout: the user's file alone counts."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text((ROOT / "config/config.yaml").read_text())
    root = tmp_path / "faces/alice"
    root.mkdir(parents=True)
    (root / "a.jpg").symlink_to(demo_sources["obama"])
    mine = tiny_config(Path(demo_sources["obama"]).parent)
    mine["datasets"] = {"mine": {"format": "folder", "root": str(tmp_path / "faces")}}
    del mine["fiqa"]["imported"]
    jobs = dry_run(tmp_path, "--cores", "2", config=mine, name="my.yaml")
    assert jobs and all(job.wildcards.get("dataset", "mine") == "mine" for job in jobs)
    assert not any(job.rule == "demo_sources" for job in jobs)
    default = str(tmp_path / "config/config.yaml")
    proc = snakemake(tmp_path, "-n", "--configfile", default, "--config", "evaluation={threshold: {fmr: 0.1}}")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "dataset=demo" in proc.stdout  # the default, when asked for, with a number set on the command line


def test_the_full_config_extends_the_default(tmp_path):
    """config/full.yaml holds only what it adds; with the default before it, it validates and adds FaceQAN."""
    files = [str(ROOT / "config" / name) for name in ("config.yaml", "full.yaml")]
    proc = snakemake(tmp_path, "-n", "--configfile", *files, "--", "results/demo/quality/faceqan.nc")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "fiqa=faceqan" in proc.stdout
    full = yaml.safe_load((ROOT / "config/full.yaml").read_text())
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert set(full["cams"]["scorecam"]["fiqa"]) == set(default["fiqa"]) | set(full["fiqa"])
    assert set(full["cams"]["scorecam"]["datasets"]) == set(default["datasets"])


@pytest.mark.parametrize("target", ["run", "report"])
def test_make_passes_the_users_config(target):
    proc = subprocess.run(["make", "-n", target, "CONFIG=my.yaml"], cwd=ROOT, capture_output=True, text=True)
    commands = [line for line in proc.stdout.splitlines() if "snakemake" in line]
    assert commands and all(f"--configfile {ROOT / 'my.yaml'}" in line for line in commands), proc.stdout

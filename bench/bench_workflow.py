"""The whole workflow at a researcher's size: faces to report on the extended ladder.

``python bench/bench_workflow.py --sizes 1000 5000`` writes N aligned crops (five per synthetic
identity, ``amva.datasets.ladder``) and runs ``make run CONFIG=... DIR=... CORES=2`` on them with
realistic bins (``high_low``, k = 0.2, identity groups), two FIQA methods (sharpness, the
embedding norm), Grad-CAM on the binned images, EDC/ERC and the report. It prints, per size:
the run's wall time and peak RSS (the largest of any process of the run), the wall time of each
rule summed over its jobs (Snakemake's own start and end times, from ``.snakemake/metadata``)
and its largest job's peak RSS (from the rule's ``benchmark:`` files), the bytes written per
image of each kind of result, and the report's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import netCDF4
import yaml

from amva.datasets.ladder import write_ladder

ROOT = Path(__file__).resolve().parents[1]
FILES = {  # kind of result -> glob under results/ladder
    "faces.nc": "faces.nc",
    "pairs.nc": "pairs.nc",
    "cam/gradcam.nc (per map)": "sface/cam/gradcam.nc",
    "variation/{fiqa}.nc (each)": "sface/gradcam/variation/*.nc",
    "edc/{fiqa}.nc (each)": "sface/edc/*.nc",
}


def config(crops: Path) -> dict:
    return {
        "seed": 0,
        "device": "cpu",
        "datasets": {"ladder": {"format": "folder", "root": str(crops), "aligned": True}},
        "models": {"sface": {"kind": "sface"}},
        "fiqa": {
            "sharpness": {"method": "sharpness"},
            "embedding_norm": {"method": "embedding_norm", "model": "sface"},
        },
        "cams": {"gradcam": {"method": "gradcam", "images": "binned"}},
        "bins": {"mode": "high_low", "k": 0.2},
    }


def maps_in(path: Path) -> int:
    with netCDF4.Dataset(path) as nc:
        return len(nc.dimensions["image"])


def rule_times(workdir: Path) -> dict[str, float]:
    """Seconds per rule, summed over its jobs, from Snakemake's metadata of each output file."""
    seen, total = set(), defaultdict(float)
    for path in (workdir / ".snakemake/metadata").iterdir():
        meta = json.loads(path.read_text())
        key = (meta.get("rule"), meta.get("starttime"))
        if key in seen or meta.get("starttime") is None:
            continue
        seen.add(key)
        total[meta["rule"]] += meta["endtime"] - meta["starttime"]
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def rule_peak_rss(workdir: Path) -> dict[str, float]:
    """MiB per rule: the largest ``max_rss`` of its jobs, from the ``benchmark:`` files (benchmarks/<rule>/...)."""
    peak: dict[str, float] = defaultdict(float)
    for path in (workdir / "benchmarks").rglob("*.tsv"):
        header, values = (line.split("\t") for line in path.read_text().splitlines()[:2])
        rss = float(dict(zip(header, values, strict=True))["max_rss"])
        rule = path.relative_to(workdir / "benchmarks").parts[0]
        peak[rule] = max(peak[rule], rss)
    return dict(peak)


def run(n: int, base: Path, sources: Path) -> dict:
    work = base / f"n{n}"
    write_ladder(n, work / "crops", sources)  # set-up, not measured
    (work / "config.yaml").write_text(yaml.safe_dump(config(work / "crops")))
    run_dir = work / "run"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    cmd = ["make", "run", f"CONFIG={work / 'config.yaml'}", f"DIR={run_dir}", "CORES=2"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"make run failed at {n} images: {proc.stderr.read()[-3000:]}")
    results = run_dir / "results"
    sizes = {}
    for kind, pattern in FILES.items():
        files = sorted((results / "ladder").glob(pattern))
        per = n if "per map" not in kind else maps_in(files[0])  # Grad-CAM maps the binned images only
        sizes[kind] = sum(f.stat().st_size for f in files) / max(len(files), 1) / per
    return {
        "images": n,
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "report_mb": (results / "report.html").stat().st_size / 1e6,
        "bytes_per_image": sizes,
        "rule_s": rule_times(run_dir),
        "rule_rss_mib": rule_peak_rss(run_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/amva-bench-workflow"))
    parser.add_argument("--sources", type=Path, default=ROOT / "resources/demo")
    args = parser.parse_args()
    rows = [run(n, args.dir, args.sources) for n in args.sizes]
    print(json.dumps(rows, indent=1), file=sys.stderr)
    first = rows[0]
    print("| images | wall | s per 1k images | ÷ first | peak RSS | report |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        per = r["wall_s"] / r["images"] * 1000
        ratio = per / (first["wall_s"] / first["images"] * 1000)
        rss, report = f"{r['peak_rss_mib']:.0f} MiB", f"{r['report_mb']:.1f} MB"
        print(f"| {r['images']:,} | {r['wall_s']:.0f} s | {per:.1f} | {ratio:.2f} | {rss} | {report} |")
    print("\n| bytes per image | " + " | ".join(f"{r['images']:,}" for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for kind in FILES:
        print(f"| {kind} | " + " | ".join(f"{r['bytes_per_image'][kind] / 1e3:.1f} kB" for r in rows) + " |")
    rules = list(rows[-1]["rule_s"])
    sizes = " | ".join(f"{r['images']:,}" for r in rows)
    print(f"\n| rule (s, summed over jobs) | {sizes} | per image, last ÷ first | largest job's peak RSS: {sizes} |")
    print("|---|" + "---|" * (2 * len(rows) + 1))
    for rule in rules:
        values = [r["rule_s"].get(rule, float("nan")) for r in rows]
        ratio = (values[-1] / rows[-1]["images"]) / (values[0] / first["images"]) if values[0] else float("nan")
        rss = " | ".join(f"{r['rule_rss_mib'].get(rule, float('nan')):.0f} MiB" for r in rows)
        print(f"| {rule} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {ratio:.2f} | {rss} |")


if __name__ == "__main__":
    main()

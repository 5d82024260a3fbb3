"""Scale: wall time, images/s and peak RSS per workflow stage at 1k, 5k and 10k images (faces build: 100k).

The demo ladder is extended to any size (``amva.datasets.ladder``): aligned crops, five per
(synthetic) identity, read as ``aligned: true`` (no detection). The "faces build" stage runs the faces job's code
(``DatasetBuild.write``, what ``scripts/faces.py`` runs) in its own process: listing,
reading, streaming ``faces.nc`` in chunks, pairs from the identities.
Every other stage is the real workflow (Snakemake, the job scripts) run for one target.
Each stage is its own process tree, measured with ``os.wait4`` (peak RSS of Snakemake and
its job). ``--pairs 50000`` measures the pair construction alone on that many identity labels.

``python bench/bench_scale.py --sizes 1000 5000`` appends to ``--json`` and prints the
table of every size measured so far, with the time and memory ratios to the smallest;
``--stages "faces build"`` runs only the stages named.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import yaml

from amva.datasets.ladder import write_ladder

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"sface": {"kind": "sface"}}
PER_IDENTITY = 5  # images per synthetic identity: realistic pair counts (2 genuine pairs per image)
# one image FIQA and one model FIQA; Grad-CAM on every image in one job (shards off), so
# the figures show the streaming itself; bins of a fixed size, as in the default config
STAGES = {
    "faces build": "",  # the faces job's code alone (faces_worker), so its memory is not hidden under Snakemake's
    "embeddings": "results/scale/sface/embeddings.nc",
    "Grad-CAM": "results/scale/sface/cam/gradcam.nc",
    "sharpness": "results/scale/quality/sharpness.nc",
    "embedding_norm": "results/scale/quality/embedding_norm.nc",
    "bins + variation": "results/scale/sface/gradcam/variation/sharpness.nc",
}


def config(crops: Path) -> dict:
    return {
        "seed": 0,
        "device": "cpu",
        "shard_size": 1_000_000,
        "datasets": {"scale": {"format": "folder", "root": str(crops), "aligned": True}},
        "models": MODEL,
        "fiqa": {
            "sharpness": {"method": "sharpness"},
            "embedding_norm": {"method": "embedding_norm", "model": "sface"},
        },
        "cams": {"gradcam": {"method": "gradcam", "fiqa": ["sharpness"]}},
        "bins": {"mode": "high_low", "k": 16},
    }


def faces_worker(workdir: Path) -> None:
    """What the faces rule's job does, on the scale dataset of ``workdir/config.yaml``."""
    from amva.datasets.build import DatasetBuild

    spec = yaml.safe_load((workdir / "config.yaml").read_text())["datasets"]["scale"]
    out = workdir / "results/scale"
    build = DatasetBuild(spec, spec["root"], seed=0)
    print(build.write(out / "faces.nc", out / "pairs.nc", out / "rejected.csv", {"dataset": "scale", **spec}))


def pairs_worker(n: int, out: Path) -> None:
    """Pairs of ``n`` images, five per identity, as the faces rule builds them: median seconds of 5 calls,
    the Python-heap peak of one (tracemalloc: what the pairs themselves take), and the counts."""
    from amva.datasets.faces import identity_pairs

    identity = [f"id{i // PER_IDENTITY:06d}" for i in range(n)]
    ids = [f"{name}/{i:06d}.png" for i, name in enumerate(identity)]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        pairs = identity_pairs(ids, identity)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    identity_pairs(ids, identity)
    heap = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row = {"pairs_s": float(np.median(times)), "heap_peak_mib": heap, "pair_count": pairs.sizes["pair"]}
    out.write_text(json.dumps({**row, **pairs.attrs}))


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a command and the processes it waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.read()[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def run_size(n: int, base: Path, sources: Path, stages: list[str]) -> list[dict]:
    workdir = base / f"n{n}"
    workdir.mkdir(parents=True, exist_ok=True)
    write_ladder(n, workdir / "crops", sources, per_identity=PER_IDENTITY)  # set-up, not measured
    (workdir / "config.yaml").write_text(yaml.safe_dump(config(workdir / "crops")))
    rows = []
    snake = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml"]
    for name in stages:
        job = [sys.executable, __file__, "--faces-worker", str(workdir)]
        wall, rss = measure([*snake, "--cores", "2", STAGES[name]] if STAGES[name] else job, workdir)
        rows.append({"images": n, "stage": name, "wall_s": wall, "images_per_s": n / wall, "peak_rss_mib": rss})
        print(f"{n:>6} {name:<18} {wall:8.1f} s {n / wall:8.1f} img/s {rss:8.0f} MiB", flush=True)
    return rows


def run_pairs(n: int, base: Path) -> dict:
    """The pair construction alone in its own process: its time, peak RSS and RSS growth."""
    out = base / f"pairs-{n}.json"
    wall, rss = measure([sys.executable, __file__, "--pairs-worker", str(n), "--json", str(out)], base)
    row = {"images": n, "stage": "pairs", "wall_s": wall, "peak_rss_mib": rss, **json.loads(out.read_text())}
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    """One row per stage and size; ratios and the marginal rate are relative to the stage's smallest size.

    The marginal rate (extra images ÷ extra seconds) removes the fixed cost of starting
    Snakemake, Python and the model, so a constant marginal rate is what linear time looks like.
    """
    by = {(r["images"], r["stage"]): r for r in rows}
    lines = [
        "| stage | images | wall (s) | images/s | marginal img/s | peak RSS (MiB) | time ÷ smallest | RSS ÷ smallest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage in STAGES:
        sizes = sorted(n for n, name in by if name == stage)
        for n in sizes:
            base, r = by[sizes[0], stage], by[n, stage]
            extra = r["wall_s"] - base["wall_s"]
            marginal = f"{(n - sizes[0]) / extra:.1f}" if n > sizes[0] and extra > 0 else ""
            lines.append(
                f"| {stage} | {n:,} | {r['wall_s']:.1f} | {r['images_per_s']:.1f} | {marginal} "
                f"| {r['peak_rss_mib']:.0f} | {r['wall_s'] / base['wall_s']:.2f} "
                f"| {r['peak_rss_mib'] / base['peak_rss_mib']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000, 10000])
    parser.add_argument("--stages", nargs="*", choices=list(STAGES), default=list(STAGES))
    parser.add_argument("--pairs", type=int, nargs="*", default=[], help="image counts for the pair construction")
    parser.add_argument("--base", type=Path, default=Path("/tmp/amva-scale"), help="work directories, one per size")
    parser.add_argument("--sources", type=Path, default=ROOT / "resources/demo")
    parser.add_argument("--json", type=Path, default=Path("/tmp/amva-scale/results.json"))
    parser.add_argument("--pairs-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--faces-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pairs_worker:
        pairs_worker(args.pairs_worker, args.json)
        return
    if args.faces_worker:
        faces_worker(args.faces_worker)
        return
    rows = json.loads(args.json.read_text()) if args.json.exists() else []
    args.base.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        new = run_size(n, args.base, args.sources.resolve(), args.stages)
        rows = [r for r in rows if (r["images"], r["stage"]) not in {(n, x) for x in args.stages}] + new
        args.json.write_text(json.dumps(rows, indent=1))
    for n in args.pairs:
        rows = [r for r in rows if (r["images"], r["stage"]) != (n, "pairs")] + [run_pairs(n, args.base)]
        args.json.write_text(json.dumps(rows, indent=1))
    print(table([r for r in rows if r["stage"] in STAGES]))


if __name__ == "__main__":
    main()

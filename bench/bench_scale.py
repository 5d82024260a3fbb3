"""Scale: wall time, images/s and peak RSS per workflow stage at 1k, 5k and 10k images.

The demo ladder is extended to any size: each image is one of the five aligned demo
faces, degraded by a seeded random kind and severity and blended with the original
at a random strength (so severities are continuous, not three steps). The faces
stage builds that set in one process, as the workflow's faces rule does; every other
stage is the real workflow (Snakemake, the job scripts) run for one target. Each stage
is its own process tree, measured with ``os.wait4`` (peak RSS of Snakemake and its job).

``python bench/bench_scale.py --sizes 1000 5000`` appends to ``--json`` and prints the
table of every size measured so far, with the time and memory ratios to the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"sface": {"kind": "sface"}}
# one image FIQA and one model FIQA; Grad-CAM on every image in one job (shards off), so
# the figures show the streaming itself; bins of a fixed size, as in the default config
STAGES = {
    "embeddings": "results/scale/sface/embeddings.nc",
    "Grad-CAM": "results/scale/sface/cam/gradcam.nc",
    "sharpness": "results/scale/quality/sharpness.nc",
    "embedding_norm": "results/scale/quality/embedding_norm.nc",
    "bins + variation": "results/scale/sface/gradcam/amva/sharpness.nc",
}


def config(sources: Path) -> dict:
    return {
        "seed": 0,
        "device": "cpu",
        "shard_size": 1_000_000,
        "datasets": {"scale": {"format": "demo", "sources": str(sources)}},
        "models": MODEL,
        "fiqa": {
            "sharpness": {"method": "sharpness"},
            "embedding_norm": {"method": "embedding_norm", "model": "sface"},
        },
        "cams": {"gradcam": {"method": "gradcam", "fiqa": ["sharpness"]}},
        "bins": {"mode": "high_low", "k": 16},
    }


def make_faces(n: int, workdir: Path, sources: Path, seed: int = 0) -> None:
    """Write ``results/scale/{faces,pairs}.nc`` and ``rejected.csv`` for ``n`` extended-ladder images."""
    from amva.datasets.degrade import DEGRADATIONS, SEVERITIES, degrade
    from amva.datasets.demo import build_demo
    from amva.datasets.faces import faces_dataset, rejected_table
    from amva.io import write_csv, write_dataset

    originals = [
        im for im in build_demo(sources, severities=(1,), degradations=["jpeg"], seed=seed)[0] if not im.severity
    ]
    kinds = list(DEGRADATIONS)
    ids, pixels, landmarks, labels = [], np.empty((n, 112, 112, 3), np.uint8), [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        src = originals[rng.integers(len(originals))]
        kind, severity = kinds[rng.integers(len(kinds))], int(rng.choice(SEVERITIES))
        strength = rng.uniform(0.25, 1.0)
        bad = degrade(src.face, kind, severity, rng).astype(np.float32)
        pixels[i] = np.rint((1 - strength) * src.face + strength * bad).astype(np.uint8)
        ids.append(f"{src.source}/{kind}/{severity}/{i:05d}")
        landmarks.append(src.landmarks)
        labels.append((src.identity, src.detection_score, src.source, kind, severity - 1 + strength))
    names = ("identity", "detection_score", "source", "degradation", "severity")
    columns = {name: np.array(col) for name, col in zip(names, zip(*labels, strict=True), strict=True)}
    faces = faces_dataset(ids, pixels, np.stack(landmarks), columns)
    out = workdir / "results/scale"
    spec = {"format": "demo", "bench": "scale", "n": n}
    write_dataset(faces, out / "faces.nc", spec)
    pairs = xr.Dataset({"a": ("pair", np.array([], str)), "b": ("pair", np.array([], str))})
    write_dataset(pairs.assign(genuine=("pair", np.array([], bool))), out / "pairs.nc", spec)  # not used here
    write_csv(rejected_table([]), out / "rejected.csv")


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


def run_size(n: int, base: Path, sources: Path) -> list[dict]:
    workdir = base / f"n{n}"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config(sources)))
    rows = []
    make = [sys.executable, __file__, "--make-faces", str(n), "--workdir", str(workdir), "--sources", str(sources)]
    stages = [("faces build", make)]
    snake = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml"]
    stages += [(name, [*snake, "--cores", "2", target]) for name, target in STAGES.items()]
    for name, cmd in stages:
        wall, rss = measure(cmd, workdir)
        rows.append({"images": n, "stage": name, "wall_s": wall, "images_per_s": n / wall, "peak_rss_mib": rss})
        print(f"{n:>6} {name:<18} {wall:8.1f} s {n / wall:8.1f} img/s {rss:8.0f} MiB", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """One row per stage and size; ratios and the marginal rate are relative to the smallest size.

    The marginal rate (extra images ÷ extra seconds) removes the fixed cost of starting
    Snakemake, Python and the model, so a constant marginal rate is what linear time looks like.
    """
    sizes = sorted({r["images"] for r in rows})
    by = {(r["images"], r["stage"]): r for r in rows}
    lines = [
        "| stage | images | wall (s) | images/s | marginal img/s | peak RSS (MiB) | time ÷ smallest | RSS ÷ smallest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage in ["faces build", *STAGES]:
        base = by.get((sizes[0], stage))
        for n in sizes:
            r = by.get((n, stage))
            if r is None or base is None:
                continue
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
    parser.add_argument("--base", type=Path, default=Path("/tmp/amva-scale"), help="work directories, one per size")
    parser.add_argument("--sources", type=Path, default=ROOT / "resources/demo")
    parser.add_argument("--json", type=Path, default=Path("/tmp/amva-scale/results.json"))
    parser.add_argument("--make-faces", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_faces:
        make_faces(args.make_faces, args.workdir, args.sources.resolve())
        return
    rows = json.loads(args.json.read_text()) if args.json.exists() else []
    for n in args.sizes:
        rows = [r for r in rows if r["images"] != n] + run_size(n, args.base, args.sources.resolve())
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()

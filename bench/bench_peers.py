"""amva's Score-CAM and Grad-CAM against pytorch-grad-cam and torchcam on the real SFace.

Same model, layer (the last 7x7 stage), targets and demo faces for every library, in one
run: per-image Pearson agreement of the maps, Score-CAM images/s at each library's
default and chosen batch sizes, Grad-CAM time per image against one forward, and the
peak RSS of each Score-CAM extraction. Every timed configuration runs in its own
subprocess, so its RSS high-water mark is its own. The peers need torchvision, so this
runs in the separate venv that ``bench/peers-env.sh`` builds::

    bash bench/peers-env.sh
    flock /tmp/amva-bench.lock .bench-venv/bin/python bench/bench_peers.py --images 4

Targets: Score-CAM explains the cosine to the image's own embedding; Grad-CAM the
projection on the own detached unit embedding (the self-cosine's gradient at the image is
zero). Both peers take them as per-image callables on the model output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from bench_cam import conv_linear_flops, gemm_rate
from torch import nn

from amva.cam import make_cam
from amva.models import load_model, to_tensor

ROOT = Path(__file__).resolve().parents[1]
LAYER = "body.conv_14.act"
SIZE = (112, 112)


class OwnEmbedding:
    """A peer's per-image target: cosine to, or projection on, the image's own embedding."""

    def __init__(self, own: torch.Tensor, kind: str) -> None:
        self.own = own.detach()
        self.unit = F.normalize(self.own, dim=0)
        self.kind = kind

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if self.kind == "cosine":
            return F.cosine_similarity(output, self.own, dim=0)
        return (output * self.unit).sum()


def load_faces(path: Path | None, count: int) -> torch.Tensor:
    """``count`` demo faces, originals first: from a faces netCDF, else built from resources/demo."""
    import xarray as xr

    default = ROOT / "results" / "demo" / "faces.nc"
    if path is None and default.is_file():
        path = default
    if path is not None:
        with xr.open_dataset(path) as ds:
            faces = ds.load()
    else:
        from amva.datasets.build import build_dataset

        faces = build_dataset({"format": "demo", "severities": [3]}, ROOT / "resources" / "demo", seed=0)[0]
    order = np.argsort(faces["degradation"].values != "none", kind="stable")[:count]
    return to_tensor(faces["pixels"].values[order])


def rss_mb(field: str) -> float:
    """A VmRSS/VmHWM line of /proc/self/status in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5), so the peak is the extraction's own."""
    Path("/proc/self/clear_refs").write_text("5")


def own_embeddings(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x).clone()


def run_ours(model: nn.Module, x: torch.Tensor, batch: int, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    # the peers' definition, softmax of the scores at T = 1, unless the options say otherwise
    res = make_cam(model, "scorecam", masks_per_pass=batch, **{"weighting": "softmax", **options})(x)
    return res.maps.numpy(), res.native.numpy()


def run_pgc(model: nn.Module, x: torch.Tensor, batch: int, options: dict[str, Any]) -> tuple[np.ndarray, None]:
    from pytorch_grad_cam import ScoreCAM

    own = own_embeddings(model, x)
    cam = ScoreCAM(model, [dict(model.named_modules())[LAYER]])
    cam.batch_size = batch  # the library reads this attribute; 16 when absent
    maps = cam(input_tensor=x, targets=[OwnEmbedding(e, "cosine") for e in own])
    return maps, None


def run_torchcam(
    model: nn.Module, x: torch.Tensor, batch: int, options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    from torchcam.methods import ScoreCAM

    own = own_embeddings(model, x)
    with ScoreCAM(model, LAYER, batch_size=batch, input_shape=(3, *SIZE)) as cam:
        with torch.no_grad():
            model(x)
        native = cam(targets=[OwnEmbedding(e, "cosine") for e in own])[0]
    return upsample(native).numpy(), native.numpy()


SCORECAM: dict[str, Callable[..., tuple[np.ndarray, np.ndarray | None]]] = {
    "amva": run_ours,
    "pytorch-grad-cam": run_pgc,
    "torchcam": run_torchcam,
}


def upsample(native: torch.Tensor) -> torch.Tensor:
    """The bilinear (half-pixel) upsampling amva applies; OpenCV's INTER_LINEAR is the same."""
    return F.interpolate(native[:, None].float(), size=SIZE, mode="bilinear", align_corners=False)[:, 0]


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gradcam_worker(model: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Forward at each batch, then each library's Grad-CAM on all images in one batch."""
    from pytorch_grad_cam import GradCAM as PgcGradCAM
    from torchcam.methods import GradCAM as TorchcamGradCAM

    n = x.shape[0]
    forward = {}
    with torch.inference_mode():
        for bs in (1, 2, 4, 8):
            xb = x[torch.arange(bs) % n]
            forward[bs] = timed(lambda xb=xb: model(xb), repeats * 3) / bs
    own = own_embeddings(model, x)
    targets = [OwnEmbedding(e, "projection") for e in own]
    ours = make_cam(model, "gradcam")
    # amva loads models frozen; the peers need a graph from the parameters, as with a
    # torchvision model (amva's Grad-CAM makes the layer output its only leaf instead)
    model.requires_grad_(True)

    def torchcam_run() -> torch.Tensor:
        with TorchcamGradCAM(model, LAYER, input_shape=(3, *SIZE)) as cam:
            scores = model(x)
            return cam(targets=targets, scores=scores)[0]

    # one library at a time: pytorch-grad-cam's hooks stay on the model until released
    res, tc = ours(x), torchcam_run()
    maps = {"amva": (res.maps.numpy(), res.native.numpy()), "torchcam": (upsample(tc).numpy(), tc.numpy())}
    seconds = {"amva": timed(lambda: ours(x), repeats) / n, "torchcam": timed(torchcam_run, repeats) / n}
    with PgcGradCAM(model, [dict(model.named_modules())[LAYER]]) as pgc:
        maps["pytorch-grad-cam"] = (pgc(input_tensor=x, targets=targets), None)
        seconds["pytorch-grad-cam"] = timed(lambda: pgc(input_tensor=x, targets=targets), repeats) / n
    model.zero_grad(set_to_none=True)
    return {"forward": forward, "seconds": seconds, "maps": maps}


def worker(args: argparse.Namespace) -> None:
    """One configuration in this process; results to ``args.out`` (npz maps + json figures)."""
    torch.set_num_threads(args.threads)
    model = load_model({"kind": "sface"})
    x = load_faces(args.faces, args.images)
    out = Path(args.out)
    if args.worker == "gradcam":
        result = gradcam_worker(model, x, args.repeats)
        np.savez(out / "gradcam.npz", **{f"{k}_maps": m for k, (m, _) in result["maps"].items()})
        for k, (_, native) in result["maps"].items():
            if native is not None:
                np.save(out / f"gradcam_{k}_native.npy", native)
        (out / "gradcam.json").write_text(json.dumps({"forward": result["forward"], "seconds": result["seconds"]}))
        return
    library, batch = args.worker.split(":")
    options = json.loads(args.options)
    with torch.no_grad():
        model(x[torch.arange(int(batch)) % x.shape[0]])  # one warm-up forward at the batch size
    before = rss_mb("VmRSS")
    reset_peak()
    start = time.perf_counter()
    maps, native = SCORECAM[library](model, x, int(batch), options)
    seconds = (time.perf_counter() - start) / x.shape[0]
    peak = rss_mb("VmHWM")
    tag = args.worker.replace(":", "_")
    np.save(out / f"{tag}_maps.npy", maps)
    if native is not None:
        np.save(out / f"{tag}_native.npy", native)
    (out / f"{tag}.json").write_text(json.dumps({"seconds": seconds, "rss_before": before, "rss_peak": peak}))


def spawn(args: argparse.Namespace, config: str, out: Path, options: dict[str, Any] | None = None) -> bool:
    """Run one configuration's worker; a failure is reported and leaves the others running."""
    cmd = [sys.executable, __file__, "--worker", config, "--out", str(out), "--images", str(args.images)]
    cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats), "--options", json.dumps(options or {})]
    if args.faces:
        cmd += ["--faces", str(args.faces)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        print(f"benchmark worker {config} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
    return proc.returncode == 0


def pearson(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Per-image Pearson r of two ``(N, ...)`` map stacks."""
    return [float(np.corrcoef(p.ravel(), q.ravel())[0, 1]) for p, q in zip(a, b, strict=True)]


def agreement_rows(method: str, maps: dict[str, np.ndarray], native: dict[str, np.ndarray]) -> list[str]:
    rows = []
    for peer in ("pytorch-grad-cam", "torchcam"):
        if peer not in maps:
            continue
        r = pearson(maps["amva"], maps[peer])
        rn = pearson(native["amva"], native[peer]) if peer in native else None
        at_native = f"{min(rn):.4f} / {statistics.median(rn):.4f}" if rn else "— (not returned)"
        rows.append(f"| {method} | {peer} | {min(r):.4f} / {statistics.median(r):.4f} | {at_native} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4, help="demo faces per configuration (originals first)")
    parser.add_argument("--faces", type=Path, help="faces netCDF (default results/demo/faces.nc, else built)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the Grad-CAM and forward timings")
    parser.add_argument("--ours", default="4", help="amva Score-CAM batch sizes, comma-separated")
    parser.add_argument("--ours-options", default="{}", help="extra amva Score-CAM options (JSON), e.g. autocast")
    parser.add_argument("--pgc", default="16,4,8", help="pytorch-grad-cam batch sizes (its default first)")
    parser.add_argument("--torchcam", default="32,4", help="torchcam batch sizes (its default first)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from importlib.metadata import version

    import torchvision

    torch.set_num_threads(args.threads)
    model = load_model({"kind": "sface"})
    flops = conv_linear_flops(model, torch.zeros(1, 3, *SIZE))
    rate = gemm_rate(torch.device("cpu"))
    channels = model.layer_shapes()[LAYER][0]
    limit = (channels + 1) * flops / rate
    configs = [f"amva:{b}" for b in args.ours.split(",")]
    configs += [f"pytorch-grad-cam:{b}" for b in args.pgc.split(",") if b]
    configs += [f"torchcam:{b}" for b in args.torchcam.split(",") if b]
    ours_options = json.loads(args.ours_options)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if not spawn(args, "gradcam", out):
            sys.exit(1)
        configs = [c for c in configs if spawn(args, c, out, ours_options if c.startswith("amva") else None)]
        grad = json.loads((out / "gradcam.json").read_text())
        grad_maps = dict(np.load(out / "gradcam.npz"))
        grad_maps = {k.removesuffix("_maps"): v for k, v in grad_maps.items()}
        grad_native = {p.stem.split("_")[1]: np.load(p) for p in out.glob("gradcam_*_native.npy")}
        score = {c: json.loads((out / f"{c.replace(':', '_')}.json").read_text()) for c in configs}
        score_maps = {c: np.load(out / f"{c.replace(':', '_')}_maps.npy") for c in configs}
        score_native = {c: np.load(p) for c in configs if (p := out / f"{c.replace(':', '_')}_native.npy").is_file()}

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads {args.threads}; "
        f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"grad-cam {version('grad-cam')}, torchcam {version('torchcam')}; {args.images} demo faces"
    )
    print(f"SFace: {flops / 1e9:.3f} GFLOP/image; dense GEMM {rate / 1e9:.1f} GFLOP/s; C = {channels}")
    print(f"Score-CAM machine limit (C + 1) x FLOPs / GEMM rate: {limit:.2f} s/image\n")

    ours_best = min(score[c]["seconds"] for c in configs if c.startswith("amva"))
    print("| Score-CAM | batch | s/image | images/s | × machine limit | amva's speed-up | peak RSS | RSS increase |")
    print("|---|---|---|---|---|---|---|---|")
    for c in configs:
        lib, batch = c.split(":")
        s = score[c]
        speedup = "" if lib == "amva" else f"{s['seconds'] / ours_best:.2f}×"
        print(
            f"| {lib} | {batch} | {s['seconds']:.2f} | {1 / s['seconds']:.3f} | {s['seconds'] / limit:.2f} | "
            f"{speedup} | {s['rss_peak']:.0f} MiB | {s['rss_peak'] - s['rss_before']:.0f} MiB |"
        )
    best_forward = min(grad["forward"].values())
    print(f"\nOne forward at its best batch: {best_forward * 1e3:.2f} ms/image ({grad['forward']})\n")
    print("| Grad-CAM (batch of all images) | ms/image | × one forward | amva's speed-up |\n|---|---|---|---|")
    for lib, s in grad["seconds"].items():
        speedup = "" if lib == "amva" else f"{s / grad['seconds']['amva']:.2f}×"
        print(f"| {lib} | {s * 1e3:.1f} | {s / best_forward:.2f} | {speedup} |")

    print("\n| method | peer | Pearson r at 112×112 (min / median) | at 7×7 (min / median) |\n|---|---|---|---|")
    for row in agreement_rows("Grad-CAM", grad_maps, grad_native):
        print(row)
    ours_cfg = configs[0]
    for c in configs[1:]:
        lib = c.split(":")[0]
        maps = {"amva": score_maps[ours_cfg], lib: score_maps[c]}
        native = {"amva": score_native[ours_cfg]} | ({lib: score_native[c]} if c in score_native else {})
        for row in agreement_rows(f"Score-CAM (peer batch {c.split(':')[1]})", maps, native):
            print(row)


if __name__ == "__main__":
    main()

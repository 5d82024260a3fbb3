"""CAM speed on the real SFace, CPU or GPU: forward throughput, Grad-CAM and Score-CAM cost.

Compares Score-CAM against the machine's limit, (C + 1) x FLOPs per forward / dense
GEMM FLOP rate of the same cores, and the fused against the unfused masked passes.
Prints a Markdown table; `python bench/bench_cam.py --help` for options.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from amva.cam import make_cam
from amva.models import pick_device
from amva.models.sface import load_sface


def conv_linear_flops(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x 2 of every Conv2d and Linear for one image."""
    total = 0.0

    def count(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2.0 * k * out.numel() / out.shape[0]
        elif isinstance(module, nn.Linear):
            total += 2.0 * module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.inference_mode():
        model(x[:1])
    for h in handles:
        h.remove()
    return total


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_rate(device: torch.device, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2.0 * n**3 / timed(lambda: a @ b, device, 10)


def scorecam_variants(device: torch.device) -> list[tuple[str, int | None, dict]]:
    """(label, masks per pass, options) to time: the CPU's kernels and batch sizes, or a GPU's batch sizes."""
    if device.type == "cuda":
        return [(f"masks per pass {bs}", bs, {}) for bs in (16, 64, 256)] + [("bf16 autocast", 64, {"autocast": True})]
    return [
        ("unfused, eager", 4, {"fuse": False}),
        *[("BN folded, oneDNN-frozen (default)", bs, {}) for bs in (2, 4, 8)],
        ("bf16 autocast (option)", 4, {"autocast": True}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--images", type=int, default=2, help="images per Score-CAM timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layer", default="auto", help="CAM layer (a small early one makes a quick smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model = load_sface().to(device)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(32, 3, 112, 112, generator=gen) * 255).to(device)
    flops = conv_linear_flops(model, x)
    rate = gemm_rate(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"machine: {name}, device {device}, threads {args.threads}, torch {torch.__version__}")
    print(f"SFace forward: {flops / 1e9:.3f} GFLOP/image; dense GEMM: {rate / 1e9:.1f} GFLOP/s\n")
    print("| measurement | batch | median | images/s (ratio to the GEMM limit) |\n|---|---|---|---|")
    forward = {}
    with torch.inference_mode():
        for bs in (1, 4, 32) + ((256,) if device.type == "cuda" else ()):
            xb = x[:bs] if bs <= x.shape[0] else x.repeat(bs // x.shape[0], 1, 1, 1)
            t = timed(lambda xb=xb: model(xb), device, args.repeats * 3)
            forward[bs] = t / bs
            print(f"| forward (embedding) | {bs} | {t * 1e3:.1f} ms | {bs / t:.1f} ({t / bs / (flops / rate):.2f}x) |")
    best_forward = min(forward.values())
    grad = make_cam(model, "gradcam", layer=args.layer)
    for bs in (4, 16) + ((32,) if device.type == "cuda" else ()):
        t = timed(lambda bs=bs: grad(x[:bs]), device, args.repeats)
        print(f"| Grad-CAM | {bs} | {t * 1e3:.1f} ms | {bs / t:.1f} ({t / bs / best_forward:.2f}x forward) |")
    exact = None
    for label, bs, options in scorecam_variants(device):
        cam = make_cam(model, "scorecam", layer=args.layer, masks_per_pass=bs, **options)
        t = timed(lambda cam=cam: cam(x[: args.images]), device, 1) / args.images
        native = cam(x[: args.images]).native.float()
        exact = native if exact is None else exact
        limit = (cam.last_scores.shape[1] + 1) * flops / rate
        gap = float((native - exact).abs().max())
        print(
            f"| Score-CAM {label} | {bs} | {t:.2f} s/image | "
            f"{1 / t:.3f} ({t / limit:.2f}x limit {limit:.3f} s; max |map - first row| {gap:.1e}) |"
        )


if __name__ == "__main__":
    main()

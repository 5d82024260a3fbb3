"""FIQA cost per image on the real SFace and the demo faces, relative to one forward pass.

``--model iresnet50`` (18/34/50/100) times an arcface_torch iResNet instead, with seeded
random weights: the cost of a forward and of SER-FIQ's head does not depend on the weights,
and the ratio shows how the head's share shrinks on the backbones SER-FIQ was made for.

Prints a Markdown table: method, seconds per image (median of repeats), and the ratio to
one SFace forward of the same images at the same batch size. The forward is timed
alternately with each method (forward, method, forward, method, ...), so both medians
see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from amva.datasets.build import build_dataset
from amva.models import pick_device, to_tensor
from amva.models.iresnet import IResNet
from amva.models.sface import load_sface
from amva.quality import METHODS


def paired(forward: Callable[[], object], method: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``forward`` and of ``method``, timed alternately after one warm-up each."""
    forward(), method()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip((forward, method), times, strict=True):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def load_model(name: str) -> torch.nn.Module:
    """The real SFace, or an iResNet of the named depth with seeded random weights (eval mode)."""
    if name == "sface":
        return load_sface()
    torch.manual_seed(0)
    return IResNet(int(name.removeprefix("iresnet"))).eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", default="resources/demo")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4, help="images per call, as the workflow's batch_size")
    parser.add_argument("--only", nargs="*", help="methods to run (default: all but --skip)")
    parser.add_argument("--skip", nargs="*", default=["faceqan"], help="methods to leave out (slow ones)")
    parser.add_argument("--model", default="sface", help="sface, or iresnetN (N = 18, 34, 50, 100; random weights)")
    args = parser.parse_args()
    device = pick_device("auto")
    model = load_model(args.model).to(device)
    faces, _, _ = build_dataset({"format": "demo", "severities": [1, 2, 3]}, Path(args.sources))
    ids = faces["image"].values.tolist()[: args.images]
    x = to_tensor(faces["pixels"].values[: args.images], device)
    n, b = len(ids), args.batch

    @torch.inference_mode()
    def forward() -> list[torch.Tensor]:
        return [model(x[i : i + b]) for i in range(0, n, b)]

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, "
        f"{args.model}, {n} demo faces, batch {b}"
    )
    print("| method | ms/image | forward ms/image (same run) | x forward |\n|---|---|---|---|")
    names = args.only or [name for name in METHODS if name not in args.skip]
    for name in names:
        method = METHODS[name]
        m = model if method.needs_model else None

        def run(fn=method.fn, m=m):
            return [fn(m, x[i : i + b], ids[i : i + b]) for i in range(0, n, b)]

        fwd, t = paired(forward, run, args.repeats)
        print(f"| {name} | {t / n * 1e3:.1f} | {fwd / n * 1e3:.1f} | {t / fwd:.2f} |", flush=True)


if __name__ == "__main__":
    main()

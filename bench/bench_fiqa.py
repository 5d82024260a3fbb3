"""FIQA cost per image on the real SFace and the demo faces, relative to one forward pass.

Prints a Markdown table: method, seconds per image (median of repeats), and the ratio
to one SFace forward at its best CPU batch size measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from amva.datasets.build import build_dataset
from amva.models import pick_device, to_tensor
from amva.models.sface import load_sface
from amva.quality import METHODS


def per_image(fn, n: int, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", default="resources/demo")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="images per call, as the workflow's batch_size")
    parser.add_argument("--skip", nargs="*", default=["faceqan"], help="methods to leave out (slow ones)")
    args = parser.parse_args()
    device = pick_device("auto")
    model = load_sface().to(device)
    faces, _, _ = build_dataset({"format": "demo", "severities": [1, 2, 3]}, Path(args.sources))
    ids = faces["image"].values.tolist()[: args.images]
    x = to_tensor(faces["pixels"].values[: args.images], device)
    with torch.inference_mode():
        forward = min(per_image(lambda b=b: [model(x[i : i + b]) for i in range(0, len(ids), b)], len(ids), 3)
                      for b in (2, 4))  # fmt: skip
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, {len(ids)} demo faces, "
          f"batch {args.batch}")  # fmt: skip
    print(f"one SFace forward (best of batch 2, 4): {forward * 1e3:.1f} ms/image\n")
    print("| method | ms/image | x forward |\n|---|---|---|")
    for name, method in METHODS.items():
        if name in args.skip:
            continue
        m = model if method.needs_model else None
        b = args.batch

        def run(fn=method.fn, m=m, b=b):
            return [fn(m, x[i : i + b], ids[i : i + b]) for i in range(0, len(ids), b)]

        t = per_image(run, len(ids), args.repeats)
        print(f"| {name} | {t * 1e3:.1f} | {t / forward:.2f} |")


if __name__ == "__main__":
    main()

"""The demo ladder extended to any size: aligned crops for scale tests and benchmarks.

Each image is one of the five aligned demo faces, degraded by a seeded random kind and severity
and blended with the original at a random strength (severities are continuous, not three
steps). The crops are written as PNG files in the folder layout, ``per_identity`` per synthetic
identity, to be read as ``format: folder, aligned: true`` (no detection).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from amva.datasets.degrade import DEGRADATIONS, SEVERITIES, degrade
from amva.datasets.demo import build_demo

__all__ = ["write_ladder"]


def write_ladder(n: int, crops: Path, sources: Path, seed: int = 0, per_identity: int = 5) -> None:
    """``n`` crops as ``crops/<identity>/<image>.png``; nothing is written when all ``n`` are there."""
    if crops.is_dir() and sum(1 for _ in crops.glob("*/*.png")) == n:
        return
    built = build_demo(sources, severities=(1,), degradations=["jpeg"], seed=seed)[0]
    originals = [im for im in built if not im.severity]
    kinds = list(DEGRADATIONS)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        src = originals[rng.integers(len(originals))]
        kind, severity = kinds[rng.integers(len(kinds))], int(rng.choice(SEVERITIES))
        strength = rng.uniform(0.25, 1.0)
        bad = degrade(src.face, kind, severity, rng).astype(np.float32)
        pixels = np.rint((1 - strength) * src.face + strength * bad).astype(np.uint8)
        out = crops / f"id{i // per_identity:06d}" / f"{i:06d}-{src.source}-{kind}-{severity}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))

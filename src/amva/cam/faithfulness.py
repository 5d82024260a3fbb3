"""Deletion and insertion curves for embedding targets (Petsiuk et al., BMVC 2018, RISE).

A faithful map ranks first the pixels the embedding depends on. With ``K`` steps, the top
``f_k = k / K`` of the map's cells (its native grid, or pixels) are replaced by a baseline
image (deletion) or revealed on it (insertion); each step is scored by the cosine between the
perturbed image's embedding and the clean image's. The area under each curve (trapezoid over
``f``) is compared with the same area for seeded random orders:

- deletion faithfulness = AUC(random) − AUC(map): above 0, removing what the map ranks first
  hurts the embedding faster than chance;
- insertion faithfulness = AUC(map) − AUC(random).

Cells the map ties (zeros after the ReLU, or a constant map) are ordered by the first random
draw, so a constant map's curve *is* that draw's curve: such a map scores as chance, not as
"undefined". The baseline is a Gaussian blur of the image by default (the RISE paper's
insertion baseline), or its mean colour.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amva.models.fuse import frozen_or_eager, fuse_conv_bn

BASELINES = ("blur", "mean")
UNITS = ("native", "pixel")
FORWARD_BATCH = 8  # perturbed images per forward: small batches run fastest on CPUs (Score-CAM's finding)


@dataclass(frozen=True)
class Perturbation:
    """How the curves are made: ``fractions`` steps K, ``random_orders`` draws R, the baseline and the unit."""

    fractions: int = 8
    random_orders: int = 2
    baseline: str = "blur"
    blur_sigma: float = 5.0  # pixels of the aligned face
    unit: str = "native"

    def __post_init__(self) -> None:
        if self.fractions < 2 or self.random_orders < 1:
            raise ValueError(f"fractions = {self.fractions} (>= 2), random_orders = {self.random_orders} (>= 1)")
        if self.baseline not in BASELINES or self.unit not in UNITS:
            raise ValueError(f"baseline in {BASELINES} and unit in {UNITS}, got {self.baseline!r}, {self.unit!r}")
        if self.blur_sigma <= 0:
            raise ValueError(f"blur_sigma = {self.blur_sigma}: must be > 0")

    @property
    def grid(self) -> np.ndarray:
        """f_0 … f_K."""
        return np.arange(self.fractions + 1) / self.fractions


def baseline_images(x: torch.Tensor, kind: str, sigma: float) -> torch.Tensor:
    """The image each step falls back to: a separable Gaussian blur (reflected borders, 3 sigma) or the mean colour."""
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).contiguous()
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
    taps = (taps / taps.sum()).to(x)
    c = x.shape[1]
    out = F.conv2d(
        F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c
    )
    return F.conv2d(
        F.pad(out, (0, 0, radius, radius), mode="reflect"), taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c
    )


def image_seed(seed: int, image: str) -> int:
    """A stable seed per image: the same random orders whatever the batch, shard or CAM."""
    return int(np.random.SeedSequence([seed, zlib.crc32(image.encode())]).generate_state(1)[0])


def _positions(values: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Each cell's place in the order high → low, ties broken by ``tiebreak`` (low first)."""
    order = np.lexsort((tiebreak, -values))
    place = np.empty(values.size, dtype=np.int64)
    place[order] = np.arange(values.size)
    return place


class Embedder:
    """The model's embeddings of many images, fast: BN folded, on CPUs frozen and run on one worker per thread."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...], device: torch.device) -> None:
        fast = fuse_conv_bn(model)
        self.model = frozen_or_eager(fast, (FORWARD_BATCH, *shape)) if device.type == "cpu" else fast
        self.workers = torch.get_num_threads() if device.type == "cpu" else 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(torch.split(x, FORWARD_BATCH))

        def run(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return self.model(batch).float()

        if self.workers == 1:
            return torch.cat([run(p) for p in parts])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(self.workers) as pool:
                return torch.cat(list(pool.map(run, parts)))
        finally:
            torch.set_num_threads(threads)


def curves(
    embed: Embedder, x: torch.Tensor, maps: np.ndarray, seeds: Sequence[int], how: Perturbation
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves of images ``x`` ``(N, 3, H, W)`` ranked by ``maps`` ``(N, h, w)``.

    Returns per image: ``deletion`` / ``insertion`` ``(N, K+1)`` for the map, ``*_random`` the mean
    of the random draws' curves, ``*_auc``, ``*_random_auc_draws`` ``(N, R)``, ``*_faithfulness``, and
    ``constant_map`` (bool).
    """
    n, _, height, width = x.shape
    if how.unit == "pixel":
        maps = F.interpolate(torch.from_numpy(maps)[:, None].float(), size=(height, width), mode="bilinear")[:, 0]
        maps = maps.numpy()
    h, w = maps.shape[1:]
    rows = np.minimum(np.arange(height) * h // height, h - 1)
    cols = np.minimum(np.arange(width) * w // width, w - 1)
    cell_of_pixel = torch.from_numpy((rows[:, None] * w + cols[None, :]).ravel())
    cells = h * w
    counts = torch.from_numpy(np.rint(how.grid[1:-1] * cells).astype(np.int64))
    base = baseline_images(x, how.baseline, how.blur_sigma)
    keys = ("deletion", "insertion")
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("constant_map", *keys, *(f"{k}_random_draws" for k in keys))}
    for i in range(n):
        rng = np.random.default_rng(seeds[i])
        draws = [_positions(np.zeros(cells), rng.permutation(cells)) for _ in range(how.random_orders)]
        flat = maps[i].ravel()
        out["constant_map"].append(np.array(flat.max() == flat.min()))
        places = torch.from_numpy(np.stack([_positions(flat, draws[0]), *draws]))  # (1 + R, cells)
        masks = (places[:, cell_of_pixel][:, None, :] < counts[None, :, None]).view(-1, 1, height, width)
        clean, blurred = x[i : i + 1], base[i : i + 1]
        batch = torch.cat([clean, blurred, torch.where(masks, blurred, clean), torch.where(masks, clean, blurred)])
        emb = embed(batch)
        score = F.cosine_similarity(emb, emb[:1]).double().numpy()
        inner = score[2:].reshape(2, 1 + how.random_orders, -1)  # (deletion/insertion, order, K - 1)
        for k, (first, last) in zip(range(2), ((score[0], score[1]), (score[1], score[0])), strict=True):
            full = np.concatenate(
                [np.full((1 + how.random_orders, 1), first), inner[k], np.full((1 + how.random_orders, 1), last)], 1
            )
            out[keys[k]].append(full[0])
            out[f"{keys[k]}_random_draws"].append(full[1:])
    res = {k: np.stack(v) for k, v in out.items()}
    for k in keys:
        res[f"{k}_auc"] = np.trapezoid(res[k], how.grid, axis=1)
        res[f"{k}_random_auc_draws"] = np.trapezoid(res[f"{k}_random_draws"], how.grid, axis=2)
        res[f"{k}_random"] = res.pop(f"{k}_random_draws").mean(axis=1)
    res["deletion_faithfulness"] = res["deletion_random_auc_draws"].mean(axis=1) - res["deletion_auc"]
    res["insertion_faithfulness"] = res["insertion_auc"] - res["insertion_random_auc_draws"].mean(axis=1)
    return res

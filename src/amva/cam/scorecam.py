"""Score-CAM (Wang et al., 2020) on an embedding target.

Each channel, upsampled and scaled to [0, 1], masks the input; the target of the
masked input's embedding scores the channel. Cost: one forward per distinct mask, so
the masked passes are where the time goes; see docs/benchmarks.md.

How scores become weights decides whether the passes matter. The reference definition,
``softmax(s)`` (pytorch-grad-cam), assumes class logits that span tens of units; cosine
scores span under one, so its weights are nearly uniform and its maps sit at r = 0.998 with
the unweighted channel mean. amva's default, ``standardised``, is the softmax of the scores'
z-values, ``softmax((s - mean s) / std s)``: a softmax whose temperature is the image's own
score spread, so the weighting means the same whatever the target's scale. On 72 images of
the default run it was the only candidate that ranked the embedding's pixels better than the
channel mean on both deletion and insertion (config/README.md, "Score-CAM's weighting";
bench/bench_scorecam_weighting.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from amva.cam.base import EPS, BaseCAM
from amva.cam.registry import register
from amva.cam.targets import Target
from amva.models import batch_for
from amva.models.fuse import frozen_or_eager, fuse_conv_bn
from amva.options import Option

WEIGHTINGS = ("standardised", "softmax", "raw")


@register
class ScoreCAM(BaseCAM):
    """Score-CAM with batched masked passes and exact savings.

    Channels that are constant over the map give an all-zero mask; they share one
    forward of the black image instead of one each. The masked passes run on a copy
    of the model with BatchNorm folded into the convolutions (``fuse=True``), on CPUs
    frozen into oneDNN kernels; masks are made per batch into one reused input buffer,
    so memory stays at a few batches of images. Weights are ``softmax(z)`` of the
    standardised scores (the default), ``softmax(s / T)`` (the reference definition at
    ``T = 1``) or the raw scores.

    ``autocast`` (off by default) runs the masked passes in bfloat16 autocast: an
    approximation, faster where the CPU or GPU has bf16 matrix units; its agreement
    with the exact maps is in docs/benchmarks.md.
    """

    name = "scorecam"
    default_target = "self_cosine"
    default_batch_size = 1  # one image at a time: its masked inputs, masks_per_pass at once, are the batch
    options: ClassVar[Mapping[str, Option]] = {
        "masks_per_pass": Option(int | None, None, "masked inputs per forward; by device when None (CPU 4, CUDA 64)"),
        "weighting": Option(
            str,
            "standardised",
            "channel weights: softmax of the standardised scores, softmax(s / T), or raw",
            choices=WEIGHTINGS,
        ),
        "temperature": Option(float, 1.0, "the softmax weighting's temperature T"),
        "fuse": Option(bool, True, "masked passes on a BN-folded copy, on CPUs frozen into oneDNN kernels"),
        "autocast": Option(bool, False, "masked passes in bfloat16 autocast (approximate)"),
    }

    def __init__(self, model: nn.Module, target: Target | None = None, layer: str = "auto", **options: Any) -> None:
        super().__init__(model, target, layer, **options)
        if self.masks_per_pass is not None and self.masks_per_pass < 1:
            raise ValueError(f"masks_per_pass = {self.masks_per_pass}: must be >= 1")
        if self.temperature <= 0:
            raise ValueError(f"temperature = {self.temperature}: must be > 0")
        self.masked_model = fuse_conv_bn(model) if self.fuse else model
        self._frozen: nn.Module | None = None

    def _runner(self, buf: torch.Tensor) -> nn.Module:
        """The module for the masked passes: frozen oneDNN graph on CPU (exact mode), else eager."""
        if not self.fuse or self.autocast or buf.device.type != "cpu":
            return self.masked_model
        if self._frozen is None:
            self._frozen = frozen_or_eager(self.masked_model, tuple(buf.shape))
        return self._frozen

    def _masks(self, acts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Masks ``(b, 1, H, W)`` in [0, 1]: channels ``(b, h, w)`` upsampled, then min-max scaled."""
        up = F.interpolate(acts[:, None], size=size, mode="bilinear", align_corners=False)
        lo, hi = up.flatten(1).aminmax(dim=1)
        return (up - lo[:, None, None, None]) / (hi - lo + EPS)[:, None, None, None]

    def _workers(self, device: torch.device) -> int:
        """Threads for the masked passes: on a CPU's frozen graph, one per intra-op thread.

        The passes are small (batch 4, 7x7 to 112x112 maps), so splitting each operator
        over cores costs synchronisation; running independent batches side by side,
        each single-threaded, does not (13-30% faster on the 2-core reference machine,
        docs/benchmarks.md). The frozen graph releases the GIL while it runs.
        """
        return torch.get_num_threads() if self.fuse and not self.autocast and device.type == "cpu" else 1

    @torch.inference_mode()
    def scores(self, image: torch.Tensor, acts: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Target score ``(C,)`` of every channel's masked copy of one ``(3, H, W)`` image."""
        lo, hi = acts.flatten(1).aminmax(dim=1)
        varying = hi > lo
        scores = torch.empty(acts.shape[0], dtype=reference.dtype, device=image.device)
        active = torch.nonzero(varying).flatten()
        per_pass = self.masks_per_pass or batch_for(image.device)
        workers = max(1, min(self._workers(image.device), -(-active.numel() // per_pass)))
        bufs = torch.empty((workers, per_pass, *image.shape), dtype=image.dtype, device=image.device)
        model = self._runner(bufs[0])
        if active.numel() < acts.shape[0]:  # every constant channel masks to black
            with self._precision(image.device):
                black = model(torch.zeros_like(image)[None])
            scores[~varying] = self.target(black.float(), reference[None]).to(scores.dtype)[0]
        parts = [active[start : start + per_pass] for start in range(0, active.numel(), per_pass)]
        if workers == 1:
            self._score_batches(model, image, acts, reference, parts, bufs[0], scores)
            return scores
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the workers read it: each runs single-threaded
        try:
            with ThreadPoolExecutor(workers) as pool:
                share = -(-len(parts) // workers)
                jobs = [
                    pool.submit(self._score_batches, model, image, acts, reference, parts[w * share : (w + 1) * share],
                                bufs[w], scores)
                    for w in range(workers)
                ]  # fmt: skip
                for job in jobs:
                    job.result()
        finally:
            torch.set_num_threads(threads)
        return scores

    def _precision(self, device: torch.device) -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()

    def _score_batches(
        self,
        model: nn.Module,
        image: torch.Tensor,
        acts: torch.Tensor,
        reference: torch.Tensor,
        parts: list[torch.Tensor],
        buf: torch.Tensor,
        scores: torch.Tensor,
    ) -> None:
        """Score the channel batches ``parts`` into ``scores`` (disjoint entries per caller), masks made in ``buf``.

        Runs in a worker thread, hence its own inference mode (and autocast): both are per thread.
        """
        size = (image.shape[-2], image.shape[-1])
        with torch.inference_mode(), self._precision(image.device):
            for idx in parts:
                batch = torch.mul(image[None], self._masks(acts[idx], size), out=buf[: idx.numel()])
                emb = model(batch).float()
                scores[idx] = self.target(emb, reference.expand_as(emb)).to(scores.dtype)

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        scores = torch.stack([self.scores(x[i], acts[i], emb[i]) for i in range(x.shape[0])])
        self.last_scores = scores
        return weigh(scores, self.weighting, self.temperature)


def weigh(scores: torch.Tensor, weighting: str, temperature: float = 1.0) -> torch.Tensor:
    """Channel weights ``(N, C)`` from Score-CAM's channel scores ``(N, C)``.

    ``standardised``: softmax of the z-values (an image whose scores are all equal gets
    uniform weights); ``softmax``: ``softmax(s / T)``; ``raw``: the scores.
    """
    if weighting == "standardised":
        centred = scores - scores.mean(dim=1, keepdim=True)
        spread = scores.std(dim=1, keepdim=True, correction=0)
        return torch.softmax(torch.where(spread > 0, centred / spread.clamp_min(EPS), 0.0), dim=1)
    if weighting == "softmax":
        return torch.softmax(scores / temperature, dim=1)
    return scores

"""Score-CAM (Wang et al., 2020) on an embedding target.

Each channel, upsampled and scaled to [0, 1], masks the input; the target of the
masked input's embedding scores the channel. Cost: one forward per distinct mask.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from amva.cam.base import EPS, BaseCAM
from amva.cam.targets import Target
from amva.models.fuse import fuse_conv_bn

Weighting = Literal["softmax", "raw"]


class ScoreCAM(BaseCAM):
    """Score-CAM with batched masked passes and exact savings.

    Channels that are constant over the map give an all-zero mask; they share one
    forward of the black image instead of one each. The masked passes run on a copy
    of the model with BatchNorm folded into the convolutions (``fuse=True``). Weights
    are ``softmax(s / T)`` (the reference definition at ``T = 1``) or the raw scores.
    """

    def __init__(
        self,
        model: nn.Module,
        target: Target,
        layer: str = "auto",
        batch_size: int = 4,
        weighting: Weighting = "softmax",
        temperature: float = 1.0,
        fuse: bool = True,
    ) -> None:
        super().__init__(model, target, layer)
        self.masked_model = fuse_conv_bn(model) if fuse else model
        if weighting not in ("softmax", "raw"):
            raise ValueError(f"Score-CAM weighting {weighting!r}: use 'softmax' or 'raw'")
        self.batch_size = batch_size
        self.weighting = weighting
        self.temperature = temperature
        self.last_scores: torch.Tensor | None = None

    def masks(self, acts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Per-channel masks ``(C, H, W)`` in [0, 1] from one image's ``(C, h, w)`` activations."""
        up = F.interpolate(acts[None], size=size, mode="bilinear", align_corners=False)[0]
        flat = up.flatten(1)
        lo = flat.min(dim=1).values[:, None, None]
        hi = flat.max(dim=1).values[:, None, None]
        return (up - lo) / (hi - lo + EPS)

    @torch.inference_mode()
    def scores(self, image: torch.Tensor, acts: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Target score ``(C,)`` of every channel's masked copy of one ``(3, H, W)`` image."""
        masks = self.masks(acts, tuple(image.shape[-2:]))
        varying = (acts.flatten(1).amax(1) - acts.flatten(1).amin(1)) > 0
        scores = torch.empty(acts.shape[0], dtype=reference.dtype, device=image.device)
        active = torch.nonzero(varying).flatten()
        if active.numel() < acts.shape[0]:  # every constant channel masks to black
            black = self.masked_model(torch.zeros_like(image)[None])
            scores[~varying] = self.target(black, reference[None])[0]
        buf = torch.empty((self.batch_size, *image.shape), dtype=image.dtype, device=image.device)
        for start in range(0, active.numel(), self.batch_size):
            idx = active[start : start + self.batch_size]
            batch = torch.mul(image[None], masks[idx, None], out=buf[: idx.numel()])
            emb = self.masked_model(batch)
            scores[idx] = self.target(emb, reference.expand_as(emb))
        return scores

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        scores = torch.stack([self.scores(x[i], acts[i], emb[i]) for i in range(x.shape[0])])
        self.last_scores = scores
        if self.weighting == "softmax":
            return torch.softmax(scores / self.temperature, dim=1)
        return scores

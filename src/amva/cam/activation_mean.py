"""The baseline every CAM is held against: the unweighted mean of the target layer's channels.

A CAM's channel weights are what it claims to add; this map has none, costs one forward pass,
and is combined, rectified, scaled and upsampled exactly like the others. On SFace, Score-CAM
with the softmax of cosine scores correlates r = 0.998 with it: its 1,024 masked passes barely
move the map. Every CAM's result records its correlation with this map (``baseline_r``).
"""

from __future__ import annotations

import torch

from amva.cam.base import BaseCAM
from amva.cam.registry import register


@register
class ActivationMean(BaseCAM):
    """Every channel weighted 1 / C: the map is ``minmax(ReLU(mean_k A_k))``, upsampled."""

    name = "activation_mean"
    default_target = None
    default_batch_size = 16

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        return torch.full(acts.shape[:2], 1.0 / acts.shape[1], dtype=acts.dtype, device=acts.device)

"""Grad-CAM (Selvaraju et al., 2017) on an embedding target."""

from __future__ import annotations

import torch

from amva.cam.base import BaseCAM
from amva.cam.registry import register


@register
class GradCAM(BaseCAM):
    """Channel weight = spatial mean of d target / d A_k: one forward, one short backward."""

    name = "gradcam"
    default_target = "self_projection"
    needs_gradients = True

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        assert grads is not None
        return grads.mean(dim=(2, 3))

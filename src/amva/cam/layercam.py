"""LayerCAM (Jiang et al., 2021) on an embedding target.

The weights are element-wise, not per channel: the map is
``ReLU(sum_k ReLU(g_k) * A_k)`` (pytorch-grad-cam's ``LayerCAM.get_cam_image``), so
the method overrides :meth:`BaseCAM.combine`. The ``(N, C)`` weights it reports are the
spatial means of ``ReLU(g)``, a per-channel summary only.
"""

from __future__ import annotations

import torch

from amva.cam.base import BaseCAM
from amva.cam.registry import register


@register
class LayerCAM(BaseCAM):
    """Each activation weighted by its own positive gradient."""

    name = "layercam"
    default_target = "self_projection"
    needs_gradients = True

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        assert grads is not None
        return grads.clamp_min(0).mean(dim=(2, 3))

    def combine(self, acts: torch.Tensor, weights: torch.Tensor, grads: torch.Tensor | None) -> torch.Tensor:
        assert grads is not None
        return (grads.clamp_min(0) * acts).sum(dim=1)

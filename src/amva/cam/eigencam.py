"""Eigen-CAM (Muhammad & Yeasin, 2020): the first principal component of the activations.

Gradient- and target-free. Per image, the ``(h*w, C)`` activation matrix is centred
(its per-channel spatial mean subtracted, as pytorch-grad-cam's
``get_2d_projection`` does) and projected on its first right singular vector ``v``.
A singular vector's sign is arbitrary (pytorch-grad-cam leaves it so); here it is
chosen so that the projection correlates positively with the channel-mean activation
map (kept when the correlation is exactly zero). The reported weights are ``v``.
"""

from __future__ import annotations

import torch

from amva.cam.base import BaseCAM
from amva.cam.registry import register


def centred(acts: torch.Tensor) -> torch.Tensor:
    """``(N, C, h, w)`` → ``(N, h*w, C)`` with each channel's spatial mean removed."""
    m = acts.flatten(2).transpose(1, 2)
    return m - m.mean(dim=1, keepdim=True)


@register
class EigenCAM(BaseCAM):
    """Projection of the centred activations on their first principal axis."""

    name = "eigencam"
    default_target = None

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        m = centred(acts).double()
        _, _, vh = torch.linalg.svd(m, full_matrices=False)
        v = vh[:, 0]  # (N, C)
        proj = torch.einsum("npc,nc->np", m, v)
        mean_map = acts.flatten(2).mean(dim=1).double()  # (N, h*w)
        corr = (proj * (mean_map - mean_map.mean(dim=1, keepdim=True))).sum(dim=1)
        sign = torch.where(corr < 0, -1.0, 1.0).to(v)
        return (v * sign[:, None]).to(acts.dtype)

    def combine(self, acts: torch.Tensor, weights: torch.Tensor, grads: torch.Tensor | None) -> torch.Tensor:
        proj = torch.einsum("npc,nc->np", centred(acts), weights)
        return proj.view(acts.shape[0], *acts.shape[2:])

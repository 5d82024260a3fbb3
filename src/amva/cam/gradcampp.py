"""Grad-CAM++ (Chattopadhay et al., 2018) on an embedding target.

As in pytorch-grad-cam's ``GradCAMPlusPlus`` (its eq. 19 with exponential-score
shortcut: higher derivatives written as powers of the first)::

    alpha_kij = g_kij^2 / (2 g_kij^2 + (sum_ab A_kab) g_kij^3)
    w_k       = sum_ij alpha_kij ReLU(g_kij)

Difference: pytorch-grad-cam adds ``eps = 1e-6`` to the denominator and zeroes alpha
where ``g == 0``; here alpha is zero exactly where the denominator is zero (which
includes every ``g == 0``) and the division is otherwise exact.
"""

from __future__ import annotations

import torch

from amva.cam.base import BaseCAM
from amva.cam.registry import register


@register
class GradCAMPlusPlus(BaseCAM):
    """Channel weight = alpha-weighted sum of the positive gradients."""

    name = "gradcampp"
    default_target = "self_projection"
    needs_gradients = True

    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        assert grads is not None
        g2 = grads.square()
        denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g2 * grads
        nonzero = denom != 0
        alpha = torch.where(nonzero, g2 / torch.where(nonzero, denom, torch.ones_like(denom)), 0.0)
        return (alpha * grads.clamp_min(0)).sum(dim=(2, 3))

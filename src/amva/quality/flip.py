"""Flip consistency: quality as the cosine between the embeddings of a face and its mirror.

A frontal, well-lit, sharp face embeds (nearly) the same as its horizontal mirror; pose,
one-sided occlusion or lighting break the symmetry. This is FaceQAN's symmetry term
``s_f`` on its own. Two forward passes (original and mirror, one batch).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from amva.models import FaceModel
from amva.quality.method import Method

HIGHER_IS_BETTER: bool = True


def flip_similarity(model: FaceModel, images: torch.Tensor) -> torch.Tensor:
    """``cos(f(x), f(mirror x))`` per image of an ``(N, 3, H, W)`` batch, as a tensor."""
    emb = model(torch.cat([images, images.flip(-1)]))
    return F.cosine_similarity(emb[: len(images)], emb[len(images) :], dim=1)


@torch.inference_mode()
def flip_consistency(model: FaceModel, images: torch.Tensor, ids: list[str]) -> np.ndarray:
    """Cosine similarity of each face's embedding with its mirror's (higher = better)."""
    del ids  # deterministic: nothing is seeded per image
    return flip_similarity(model, images).double().cpu().numpy()


RECORD = Method(name="flip_consistency", kind="model", higher_is_better=HIGHER_IS_BETTER, fn=flip_consistency)

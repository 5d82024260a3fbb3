"""Embedding norm (MagFace-style): quality as the length of the unnormalised embedding.

MagFace trains the feature magnitude to grow with recognisability; for other FR models
the norm of the raw embedding is the same cheap, training-free proxy. One forward pass.
"""

from __future__ import annotations

import numpy as np
import torch

from amva.models import FaceModel
from amva.quality.method import Method

HIGHER_IS_BETTER: bool = True


@torch.inference_mode()
def embedding_norm(model: FaceModel, images: torch.Tensor, ids: list[str]) -> np.ndarray:
    """``‖f(x)‖₂`` of the unnormalised embedding per image (higher = better)."""
    del ids  # deterministic: nothing is seeded per image
    return torch.linalg.vector_norm(model(images).double(), dim=1).cpu().numpy()


RECORD = Method(name="embedding_norm", kind="model", higher_is_better=HIGHER_IS_BETTER, fn=embedding_norm)

"""Face embeddings of a dataset, the input of comparison scores and EDC curves."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from amva.models import FaceModel, to_tensor
from amva.runlog import batches


@torch.inference_mode()
def embed(faces: xr.Dataset, model: FaceModel, device: torch.device, batch_size: int = 32) -> xr.Dataset:
    """Unnormalised embeddings ``(image, feature)`` and their norms.

    ``faces`` may be opened lazily: pixels are read one batch at a time. Workflow jobs
    call this per chunk (:mod:`amva.stream`) so that memory stays bounded.
    """
    ids = faces["image"].values
    out = []
    for chunk in batches(np.arange(ids.size), batch_size, "embeddings"):
        x = to_tensor(faces["pixels"].isel(image=chunk).values, device)
        out.append(model(x).float().cpu().numpy())
    emb = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    ds = xr.Dataset(
        {"embedding": (("image", "feature"), emb), "norm": ("image", np.linalg.norm(emb, axis=1))},
        coords={"image": ids, "feature": np.arange(emb.shape[1])},
    )
    ds["embedding"].attrs = {"description": "unnormalised face embedding"}
    return ds

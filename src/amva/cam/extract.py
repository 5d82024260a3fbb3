"""Activation maps for a dataset (or one chunk of it): batches in, one labelled dataset out."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from amva.cam.base import BaseCAM
from amva.io import UNIT_RANGE
from amva.models import to_tensor
from amva.runlog import batches


def extract(
    faces: xr.Dataset,
    cam: BaseCAM,
    device: torch.device,
    batch_size: int = 8,
    references: xr.DataArray | None = None,
) -> xr.Dataset:
    """Maps ``(image, y, x)`` in [0, 1], native maps ``(image, h, w)`` and channel weights.

    ``faces`` may be opened lazily: pixels are read one batch at a time. Workflow jobs
    call this per chunk (:mod:`amva.stream`) so that memory stays bounded. ``references``
    ``(image, feature)`` are the embeddings a reference target compares with (matched by image).
    """
    ids = faces["image"].values
    refs = None if references is None else references.sel(image=ids).values.astype(np.float32)
    maps, native, weights, scores = [], [], [], []
    for chunk in batches(np.arange(ids.size), batch_size, type(cam).__name__):
        given = None if refs is None else torch.from_numpy(refs[chunk]).to(device)
        res = cam(to_tensor(faces["pixels"].isel(image=chunk).values, device), references=given)
        maps.append(res.maps.float().cpu().numpy())
        native.append(res.native.float().cpu().numpy())
        weights.append(res.weights.float().cpu().numpy())
        if res.scores is not None:
            scores.append(res.scores.float().cpu().numpy())
    h, w = native[0].shape[-2:]
    ds = xr.Dataset(
        {
            "maps": (("image", "y", "x"), np.concatenate(maps)),
            "maps_native": (("image", "h", "w"), np.concatenate(native)),
            "channel_weight": (("image", "channel"), np.concatenate(weights)),
        },
        coords={"image": ids, "y": faces["y"].values, "x": faces["x"].values, "h": np.arange(h), "w": np.arange(w)},
        attrs={"layer": cam.layer, "target": getattr(cam.target, "__name__", str(cam.target))},
    )
    if scores:
        ds["channel_score"] = (("image", "channel"), np.concatenate(scores))
        ds["channel_score"].attrs = {"description": "target score of each channel's masked input"}
    ds["maps"].attrs = {"description": "activation map upsampled bilinearly to the input", "range": UNIT_RANGE}
    ds["maps_native"].attrs = {"description": "activation map at the layer's resolution", "range": UNIT_RANGE}
    return ds

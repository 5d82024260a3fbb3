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
    channel_arrays: bool = False,
) -> xr.Dataset:
    """Maps ``(image, y, x)`` in [0, 1], native maps ``(image, h, w)``, and per image what the
    channel weights add: the map's Pearson r with the channel-mean map, and for methods that
    score channels (Score-CAM) the spread of the scores.

    The per-channel weights and scores themselves (4 kB an image each on SFace) are kept only
    with ``channel_arrays``: the report does not use them. ``faces`` may be opened lazily:
    pixels are read one batch at a time. Workflow jobs call this per chunk (:mod:`amva.stream`)
    so that memory stays bounded. ``references`` ``(image, feature)`` are the embeddings a
    reference target compares with (matched by image).
    """
    ids = faces["image"].values
    refs = None if references is None else references.sel(image=ids).values.astype(np.float32)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("maps", "native", "weights", "r", "scores")}
    for chunk in batches(np.arange(ids.size), batch_size, type(cam).__name__):
        given = None if refs is None else torch.from_numpy(refs[chunk]).to(device)
        res = cam(to_tensor(faces["pixels"].isel(image=chunk).values, device), references=given)
        for name, value in (("maps", res.maps), ("native", res.native), ("weights", res.weights)):
            parts[name].append(value.float().cpu().numpy())
        parts["r"].append(res.baseline_r.cpu().numpy())
        if res.scores is not None:
            parts["scores"].append(res.scores.double().cpu().numpy())
    h, w = parts["native"][0].shape[-2:]
    ds = xr.Dataset(
        {
            "maps": (("image", "y", "x"), np.concatenate(parts["maps"])),
            "maps_native": (("image", "h", "w"), np.concatenate(parts["native"])),
            "baseline_r": ("image", np.concatenate(parts["r"])),
        },
        coords={"image": ids, "y": faces["y"].values, "x": faces["x"].values, "h": np.arange(h), "w": np.arange(w)},
        attrs={"layer": cam.layer, "target": getattr(cam.target, "__name__", str(cam.target))},
    )
    ds["maps"].attrs = {"description": "activation map upsampled bilinearly to the input", "range": UNIT_RANGE}
    ds["maps_native"].attrs = {"description": "activation map at the layer's resolution", "range": UNIT_RANGE}
    ds["baseline_r"].attrs = {
        "description": "Pearson r between the map and the unweighted channel mean's map (CAM activation_mean) "
        "of the same layer: near 1, the channel weights do not change the map; NaN for a constant map"
    }
    if channel_arrays:
        ds["channel_weight"] = (("image", "channel"), np.concatenate(parts["weights"]))
    if parts["scores"]:
        scores = np.concatenate(parts["scores"])
        mean = scores.mean(axis=1)
        ds["score_range"] = ("image", scores.max(axis=1) - scores.min(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            ds["score_cv"] = ("image", scores.std(axis=1) / np.abs(mean))
        ds["score_range"].attrs = {"description": "max - min of the channels' target scores"}
        ds["score_cv"].attrs = {"description": "coefficient of variation (std / |mean|) of the channels' target scores"}
        if channel_arrays:
            ds["channel_score"] = (("image", "channel"), scores.astype(np.float32))
            ds["channel_score"].attrs = {"description": "target score of each channel's masked input"}
    return ds

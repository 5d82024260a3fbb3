"""Activation maps of one CAM on one model for a dataset (or its binned images)."""

import numpy as np
import torch

from amva.cam import make_cam
from amva.cam.extract import extract
from amva.io import read_dataset, write_dataset
from amva.models import load_model, pick_device
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    torch.set_num_threads(sm.threads)
    spec = dict(sm.params.spec)
    device = pick_device(sm.params.device)
    model = load_model(sm.params.model).to(device)
    faces = read_dataset(sm.input.faces, required=("pixels",))
    if sm.input.bins:
        wanted = set()
        for path in sm.input.bins:
            labels = read_dataset(path, required=("bin",))["bin"]
            wanted.update(labels["image"].values[labels.values != ""].tolist())
        faces = faces.sel(image=np.array(sorted(wanted)))
        log.info("maps for the %d binned images only (images: binned)", len(wanted))
    options = {"batch_size": spec["batch_size"]} if spec["method"] == "scorecam" else {}
    if spec["method"] == "scorecam":
        options.update(weighting=spec["weighting"], temperature=spec["temperature"])
    cam = make_cam(model, spec["method"], spec["target"], spec["layer"], **options)
    image_batch = 1 if spec["method"] == "scorecam" else spec["batch_size"]
    ds = extract(faces, cam, device, batch_size=image_batch)
    write_dataset(ds, sm.output[0], spec, model_sha256=model.sha256, cam_method=spec["method"])

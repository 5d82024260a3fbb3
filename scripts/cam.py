"""Activation maps of one CAM on one model for a dataset (or its binned images)."""

from amva.cam import cam_from_config
from amva.cam.extract import extract
from amva.io import read_dataset, write_dataset
from amva.models import load_for_job
from amva.runlog import log_to
from amva.variation import binned_images

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    spec = sm.params.spec
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    faces = read_dataset(sm.input.faces, required=("pixels",))
    if sm.input.bins:
        ids = binned_images([read_dataset(path, required=("bin",)) for path in sm.input.bins])
        faces = faces.sel(image=ids)
        log.info("maps for the %d binned images only (images: binned)", len(ids))
    cam = cam_from_config(model, spec)
    image_batch = 1 if spec["method"] == "scorecam" else spec["batch_size"]
    ds = extract(faces, cam, device, batch_size=image_batch)
    write_dataset(ds, sm.output[0], spec, model_sha256=model.sha256, cam_method=spec["method"])

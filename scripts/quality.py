"""Score every face of a dataset with one computed FIQA instance."""

import torch

from amva.io import read_dataset, write_dataset
from amva.models import load_for_job, pick_device
from amva.quality import score
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    spec = dict(sm.params.spec)
    extra = {}
    if sm.params.model:
        model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
        extra["model_sha256"] = model.sha256
    else:
        torch.set_num_threads(sm.threads)
        model, device = None, pick_device(sm.params.device)
    faces = read_dataset(sm.input.faces, required=("pixels",))
    params = {"seed": sm.params.seed, **spec}
    ds = score(faces, spec["method"], model, device, params, spec["batch_size"])
    write_dataset(ds, sm.output[0], params, **extra)
    log.info("%s: quality range %.4f .. %.4f", spec["method"], float(ds["quality"].min()), float(ds["quality"].max()))

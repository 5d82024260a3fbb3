"""Embed every face of a dataset with one FR model."""

import torch

from amva.embeddings import embed
from amva.io import read_dataset, write_dataset
from amva.models import load_model, pick_device
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    torch.set_num_threads(sm.threads)
    device = pick_device(sm.params.device)
    model = load_model(sm.params.model).to(device)
    ds = embed(read_dataset(sm.input.faces, required=("pixels",)), model, device)
    write_dataset(ds, sm.output[0], sm.params.model, model_sha256=model.sha256)

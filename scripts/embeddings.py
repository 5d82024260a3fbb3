"""Embed every face of a dataset with one FR model."""

from amva.embeddings import embed
from amva.io import read_dataset, write_dataset
from amva.models import load_for_job
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    ds = embed(read_dataset(sm.input.faces, required=("pixels",)), model, device)
    write_dataset(ds, sm.output[0], sm.params.model, model_sha256=model.sha256)

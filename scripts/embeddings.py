"""Embed every face of a dataset with one FR model, chunk by chunk (memory stays bounded)."""

from amva.embeddings import embed
from amva.models import load_for_job
from amva.runlog import log_to
from amva.stream import ChunkedWriter, chunk_size, image_chunks, open_lazy

# Eager CPU forward passes are fastest at batch 2-4 (docs/benchmarks.md); a GPU wants more.
BATCH = {"cpu": 4, "cuda": 64}

sm = snakemake  # noqa: F821
with log_to(sm.log[0]), open_lazy(sm.input.faces, required=("pixels",)) as faces:
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    batch = BATCH.get(device.type, 4)
    with ChunkedWriter(sm.output[0], sm.params.model, model_sha256=model.sha256) as out:
        for chunk in image_chunks(faces, size=chunk_size(batch)):
            out.append(embed(chunk, model, device, batch_size=batch))

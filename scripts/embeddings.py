"""Embed every face of a dataset with one FR model, chunk by chunk (memory stays bounded)."""

from amva.embeddings import embed
from amva.models import batch_for, load_for_job
from amva.runlog import log_to
from amva.stream import ChunkedWriter, chunk_size, image_chunks, open_lazy

sm = snakemake  # noqa: F821
with log_to(sm.log[0]), open_lazy(sm.input.faces, required=("pixels",)) as faces:
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    batch = batch_for(device)
    with ChunkedWriter(sm.output[0], sm.params.model, model_sha256=model.sha256) as out:
        for chunk in image_chunks(faces, size=chunk_size(batch)):
            out.append(embed(chunk, model, device, batch_size=batch))

"""Activation maps of one CAM on one model for one shard of a dataset (or of its binned images).

Faces are read and maps written chunk by chunk (amva.stream), so memory stays bounded
whatever the dataset size; the gather rule joins the shards into one file.
"""

import numpy as np

from amva.bins import binned_images
from amva.cam import cam_from_config, images_per_call
from amva.cam.extract import extract
from amva.cam.targets import identity_means
from amva.io import read_dataset
from amva.models import load_for_job
from amva.runlog import log_to
from amva.stream import ChunkedWriter, chunk_size, image_chunks, open_lazy, shard_count, shard_part

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log, open_lazy(sm.input.faces, required=("pixels",)) as faces:
    spec, shard = sm.params.spec, sm.params.shard
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    ids = faces["image"].values
    selection = np.arange(ids.size)
    if sm.input.bins:
        wanted = binned_images([read_dataset(path, required=("bin",)) for path in sm.input.bins])
        selection = faces.indexes["image"].get_indexer(wanted)
        if (selection < 0).any():
            raise ValueError(f"{sm.input.bins}: bins name images that {sm.input.faces} lacks; re-run the bins")
        log.info("maps for the %d binned images only (images: binned)", len(wanted))
    n_shards = shard_count(ids.size, shard["size"])
    part = shard_part(selection, n_shards, shard["index"])
    log.info("shard %d of %d: %d images", shard["index"] + 1, n_shards, part.size)
    cam = cam_from_config(model, spec)
    references = None
    if sm.input.embeddings:  # target identity_cosine: each identity's mean embedding
        embeddings = read_dataset(sm.input.embeddings, required=("embedding",))["embedding"]
        references = identity_means(embeddings, faces["identity"].load())
    batch = images_per_call(spec, device)
    with ChunkedWriter(sm.output[0], spec, model_sha256=model.sha256, cam_method=spec["method"]) as out:
        for chunk in image_chunks(faces, part, chunk_size(batch)):
            maps = extract(chunk, cam, device, batch, references, spec.get("channel_weights", False))
            out.append(maps)

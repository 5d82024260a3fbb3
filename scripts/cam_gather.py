"""Join a CAM's shards into one file, in shard order, chunk by chunk (memory stays bounded)."""

from amva.runlog import log_to
from amva.stream import ChunkedWriter, image_chunks, open_lazy

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log, ChunkedWriter(sm.output[0], sm.params.spec) as out:
    for path in sm.input.shards:
        with open_lazy(path) as shard:
            for chunk in image_chunks(shard):
                out.append(chunk)  # keeps the shard's layer, target, cam_method, model_sha256
    log.info("%d images from %d shards", out.images, len(sm.input.shards))

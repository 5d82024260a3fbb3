"""Score every face of a dataset with one computed FIQA instance, chunk by chunk (memory stays bounded)."""

import numpy as np
import torch

from amva.models import batch_for, load_for_job, pick_device
from amva.quality import score
from amva.quality.config import fiqa_options
from amva.runlog import log_to
from amva.stream import ChunkedWriter, chunk_size, image_chunks, open_lazy

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log, open_lazy(sm.input.faces, required=("pixels",)) as faces:
    spec = dict(sm.params.spec)
    extra = {}
    if sm.params.model:
        model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
        extra["model_sha256"] = model.sha256
    else:
        torch.set_num_threads(sm.threads)
        model, device = None, pick_device(sm.params.device)
    options = fiqa_options(spec, sm.params.seed)
    batch = spec.get("batch_size") or batch_for(device)
    lo, hi = np.inf, -np.inf
    with ChunkedWriter(sm.output[0], {"seed": sm.params.seed, **spec}, **extra) as out:
        for chunk in image_chunks(faces, size=chunk_size(batch)):
            ds = score(chunk, spec["method"], model, device, options, batch)
            lo, hi = min(lo, float(ds["quality"].min())), max(hi, float(ds["quality"].max()))
            out.append(ds)
    log.info("%s: quality range %.4f .. %.4f", spec["method"], lo, hi)

"""Score every face of a dataset with one FIQA instance."""

from amva.io import read_dataset, write_dataset
from amva.models import load_for_job
from amva.quality import score
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    spec = dict(sm.params.spec)
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    faces = read_dataset(sm.input.faces, required=("pixels",))
    method, batch_size = spec.pop("method"), spec.pop("batch_size")
    spec.pop("model")
    ds = score(faces, method, model, device, {**spec, "seed": sm.params.seed}, batch_size)
    write_dataset(ds, sm.output[0], {**sm.params.spec, "seed": sm.params.seed}, model_sha256=model.sha256)
    log.info("%s: quality range %.4f .. %.4f", method, float(ds["quality"].min()), float(ds["quality"].max()))

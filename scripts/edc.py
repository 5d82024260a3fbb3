"""Error-versus-discard curve of one (dataset, model, FIQA)."""

from amva.evaluation import edc_dataset
from amva.io import read_dataset, write_dataset
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    cfg = sm.params.evaluation
    ds = edc_dataset(
        read_dataset(sm.input.pairs, required=("a", "b", "genuine")),
        read_dataset(sm.input.embeddings, required=("embedding",)),
        read_dataset(sm.input.quality, required=("quality",)),
        cfg["threshold"],
        tuple(cfg["pauc_limits"]),
    )
    write_dataset(ds, sm.output[0], cfg)

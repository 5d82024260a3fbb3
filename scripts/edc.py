"""Error versus discard of one (dataset, model, FIQA): EDC (dasec) and ERC (CR-FIQA) in one file."""

from amva.evaluation import error_versus_discard
from amva.io import read_dataset, write_dataset
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    cfg = sm.params.evaluation
    ds = error_versus_discard(
        read_dataset(sm.input.pairs, required=("a", "b", "genuine")),
        read_dataset(sm.input.embeddings, required=("embedding",)),
        read_dataset(sm.input.quality, required=("quality",)),
        cfg["threshold"],
        tuple(cfg["pauc_limits"]),
    )
    log.info(
        "EDC: threshold %.4f (%s), starting FNMR %.4f; ERC: %s",
        ds.attrs["edc_threshold"],
        ds.attrs["edc_threshold_source"],
        ds.attrs["edc_starting_error"],
        ds.attrs["erc_nan_reason"],
    )
    write_dataset(ds, sm.output[0], cfg)

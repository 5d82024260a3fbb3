"""Error versus discard of one (dataset, model, FIQA): EDC (dasec) and ERC (CR-FIQA) in one file."""

from amva.evaluation import error_versus_discard
from amva.io import read_dataset, write_dataset
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    cfg = sm.params.evaluation
    ((threshold_from, target),) = cfg["threshold"].items()  # the schema allows exactly one
    ds = error_versus_discard(
        read_dataset(sm.input.pairs, required=("a", "b", "genuine")),
        read_dataset(sm.input.embeddings, required=("embedding",)),
        read_dataset(sm.input.quality, required=("quality",)),
        threshold_from,
        target,
        tuple(cfg["pauc_limits"]),
    )
    log.info("%d genuine and %d impostor pairs", ds.attrs["genuine_pairs"], ds.attrs["impostor_pairs"])
    log.info("EDC: %s", ds.attrs["edc_status"])
    if ds.attrs["edc_status"] == "computed":
        log.info(
            "EDC threshold %.4f (%s), starting FNMR %.4f",
            ds.attrs["edc_threshold"],
            ds.attrs["edc_threshold_source"],
            ds.attrs["edc_starting_error"],
        )
    log.info("ERC: %s; %s", ds.attrs["erc_status"], ds.attrs.get("erc_resolution", ""))
    write_dataset(ds, sm.output[0], cfg)

"""Split a dataset's images into quality bins for one FIQA instance."""

from amva.io import read_dataset, write_dataset
from amva.runlog import log_to
from amva.variation import bins_dataset

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    cfg = sm.params.bins
    ds = bins_dataset(read_dataset(sm.input.quality, required=("quality",)), cfg["mode"], cfg["k"], cfg["n"])
    write_dataset(ds, sm.output[0], cfg)
    log.info("bins %s of sizes %s", ds["bin_name"].values.tolist(), ds["bin_size"].values.tolist())

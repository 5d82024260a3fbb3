"""Build a dataset's aligned faces, its pairs and the table of rejected inputs."""

from amva.datasets.build import build_dataset
from amva.io import write_csv, write_dataset
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    faces, pairs, rejected = build_dataset(sm.params.spec, sm.input.sources, seed=sm.params.seed)
    config = {"dataset": sm.wildcards.dataset, **sm.params.spec, "seed": sm.params.seed}
    write_dataset(faces, sm.output.faces, config)
    write_dataset(pairs, sm.output.pairs, config)
    write_csv(rejected, sm.output.rejected)
    log.info("%d faces, %d pairs, %d rejected", faces.sizes["image"], pairs.sizes["pair"], len(rejected))

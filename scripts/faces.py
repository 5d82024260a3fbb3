"""Build a dataset's aligned faces (streamed in chunks), its pairs and the table of rejected inputs."""

from amva.datasets.build import DatasetBuild
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    build = DatasetBuild(sm.params.spec, sm.input.sources, seed=sm.params.seed)
    config = {"dataset": sm.wildcards.dataset, **sm.params.spec, "seed": sm.params.seed}
    log.info("%s", build.write(sm.output.faces, sm.output.pairs, sm.output.rejected, config))

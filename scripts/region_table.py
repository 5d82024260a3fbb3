"""The inside/outside numbers of every analysis in one table for the report."""

from amva.io import read_dataset, write_csv
from amva.report.tables import region_table
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    keys = [tuple(k.split("|")) for k in sm.params.analyses]
    results = {key: read_dataset(path, required=("region_mean",)) for key, path in zip(keys, sm.input, strict=True)}
    write_csv(region_table(results), sm.output[0])

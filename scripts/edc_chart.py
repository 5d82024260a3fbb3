"""EDC and ERC charts per (dataset, model), a curve per FIQA instance."""

import pandas as pd

from amva.io import read_dataset
from amva.report.charts import edc_chart, erc_chart, write_svg
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    edc, erc = [], []
    for fiqa, path in zip(sm.params.fiqa, sm.input, strict=True):
        ds = read_dataset(path, required=("edc_error", "erc_fnmr"))
        edc.append(ds["edc_error"].to_dataframe().reset_index().assign(fiqa=fiqa))
        erc.append(ds["erc_fnmr"].to_dataframe().reset_index().assign(fiqa=fiqa))
    w = sm.wildcards
    write_svg(edc_chart(pd.concat(edc), f"EDC (FNMR) · {w.dataset} · {w.model}"), sm.output.edc)
    write_svg(erc_chart(pd.concat(erc), f"ERC (CR-FIQA protocol) · {w.dataset} · {w.model}"), sm.output.erc)

"""One EDC chart per (dataset, model) with a curve per FIQA instance."""

import pandas as pd

from amva.io import read_dataset
from amva.report.charts import edc_chart, write_svg
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    frames = []
    for fiqa, path in zip(sm.params.fiqa, sm.input, strict=True):
        curve = read_dataset(path, required=("edc_error",))["edc_error"].to_dataframe().reset_index()
        frames.append(curve.assign(fiqa=fiqa))
    w = sm.wildcards
    write_svg(edc_chart(pd.concat(frames), f"EDC (FNMR) · {w.dataset} · {w.model}"), sm.output[0])

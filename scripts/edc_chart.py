"""EDC and ERC charts per (dataset, model), a curve per FIQA instance, or why there is none."""

import pandas as pd

from amva.io import read_dataset
from amva.report.charts import edc_chart, erc_chart, write_svg
from amva.report.thin import thin
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    edc, erc, status = [], [], {}
    for fiqa, path in zip(sm.params.fiqa, sm.input, strict=True):
        ds = read_dataset(path, required=("edc_error", "erc_fnmr"))
        curve = ds["edc_error"].to_dataframe().reset_index()
        drawn = thin(curve["discard"].values, curve["edc_error"].values, keep=ds["limit"].values)
        log.info("%s: EDC of %d points, %d drawn", fiqa, len(curve), len(drawn))
        edc.append(curve.iloc[drawn].assign(fiqa=fiqa))
        erc.append(ds[["erc_fnmr", "erc_resolvable"]].to_dataframe().reset_index().assign(fiqa=fiqa))
        status = {"EDC": ds.attrs["edc_status"], "ERC": ds.attrs["erc_status"]}  # the same for every FIQA
    w = sm.wildcards
    titles = {
        name: f"{name} · {w.dataset} · {w.model}" + ("" if state == "computed" else f": {state}")
        for name, state in status.items()
    }
    log.info("%s", "; ".join(titles.values()))
    write_svg(edc_chart(pd.concat(edc), titles["EDC"] + " (FNMR)"), sm.output.edc)
    write_svg(erc_chart(pd.concat(erc), titles["ERC"] + " (CR-FIQA protocol)"), sm.output.erc)

"""Per dataset: FIQA vs the known degradation severity, and FIQA vs FIQA."""

import pandas as pd

from amva.io import read_dataset, write_csv
from amva.quality.validation import agreement, severity_validation
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    names = sm.params.fiqa
    faces = read_dataset(sm.input.faces, required=("pixels",))
    qualities = {n: read_dataset(p, required=("quality",)) for n, p in zip(names, sm.input.quality, strict=True)}
    bins = {n: read_dataset(p, required=("bin",)) for n, p in zip(names, sm.input.bins, strict=True)}
    if "severity" in faces.coords:
        validation = severity_validation(faces, qualities)
    else:
        log.info("no severity labels in this dataset: the validation table is empty")
        validation = pd.DataFrame(columns=["fiqa", "degradation", "images", "spearman"])
    write_csv(validation.round(4), sm.output.validation)
    write_csv(agreement(qualities, bins).round(4), sm.output.agreement)

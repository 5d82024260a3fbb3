"""The report's front page: headline numbers per analysis, input losses, provenance."""

import pandas as pd

from amva.io import read_dataset, write_bytes, write_csv
from amva.report.summary import rejected_counts, run_provenance, summary_html, summary_table
from amva.report.weights import weights_table
from amva.runlog import log_to
from amva.stream import image_count

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    keys = [tuple(k.split("|")) for k in sm.params.analyses]
    results = {
        key: read_dataset(path, required=("region_mean", "region_mean_ci", "contrast_ci", "perm_p_value_image_level"))
        for key, path in zip(keys, sm.input.variation, strict=True)
    }
    evaluations = {
        tuple(k.split("|")): read_dataset(path, required=("pauc", "auc"))
        for k, path in zip(sm.params.evaluations, sm.input.edc, strict=True)
    }
    rejected = {d: pd.read_csv(path) for d, path in zip(sm.params.datasets, sm.input.rejected, strict=True)}
    used = {d: image_count(path) for d, path in zip(sm.params.datasets, sm.input.faces, strict=True)}
    cams = {
        tuple(k.split("|")): read_dataset(path, required=("baseline_r",))
        for k, path in zip(sm.params.cams, sm.input.cams, strict=True)
    }
    weights = weights_table(cams)
    log.info("what the channel weights add:\n%s", weights.to_string())
    table = summary_table(results, evaluations)
    prov = run_provenance([*results.values(), *evaluations.values()], sm.params.config)
    write_csv(table, sm.output.csv)
    write_csv(weights, sm.output.weights)
    write_bytes(sm.output.html, summary_html(table, rejected_counts(rejected, used), prov, weights).encode())
    log.info("summary of %d analyses written", len(table))

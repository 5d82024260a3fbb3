"""The report's front page: headline numbers per analysis, input losses, provenance."""

import pandas as pd

from amva.io import read_dataset, write_bytes, write_csv
from amva.report.charts import svg_text, write_chart_png
from amva.report.summary import rejected_counts, run_provenance, summary_html, summary_table
from amva.report.trust import forest_chart, trust_sentences, trust_table
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
    trusts = {
        tuple(k.split("|")): read_dataset(path, required=("spearman_median",))
        for k, path in zip(sm.params.trust, sm.input.trust, strict=True)
    }
    trust = trust_table(trusts)
    log.info("can the maps be trusted?\n%s", trust.to_string())
    weights = weights_table(cams)
    log.info("what the channel weights add:\n%s", weights.to_string())
    table = summary_table(results, evaluations)
    prov = run_provenance([*results.values(), *evaluations.values()], sm.params.config)
    write_csv(table, sm.output.csv)
    write_csv(weights, sm.output.weights)
    write_csv(trust, sm.output.trust)
    svg = ""
    if len(table):  # the forest plot opens the front page; its PNG is what the README shows
        forest = forest_chart(table)
        svg = svg_text(forest)
        write_chart_png(forest, sm.output.forest)
    else:
        write_bytes(sm.output.forest, b"")
    lines = trust_sentences(trust) if len(trust) else []
    page = summary_html(table, rejected_counts(rejected, used), prov, weights, lines, svg)
    write_bytes(sm.output.html, page.encode())
    log.info("summary of %d analyses written", len(table))

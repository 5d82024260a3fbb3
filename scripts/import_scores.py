"""Import a FIQA tool's score file for a dataset, reporting every unmatched entry."""

from amva.io import read_dataset, write_csv, write_dataset
from amva.quality.scores_file import import_scores
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    spec = sm.params.spec
    faces = read_dataset(sm.input.faces, required=("pixels",))
    ds, problems = import_scores(
        faces["image"].values.tolist(),
        sm.input.scores,
        fmt=spec.get("format", "auto"),
        column=spec.get("column"),
        id_column=spec.get("id_column"),
        strip_prefix=spec.get("strip_prefix"),
        higher_is_better=spec.get("higher_is_better", True),
        min_coverage=spec.get("min_coverage", 1.0),
        method=sm.wildcards.fiqa,
    )
    write_csv(problems, sm.output.problems)
    write_dataset(ds, sm.output.quality, spec)
    log.info("imported %s: coverage %.3f, %d problem rows", sm.input.scores, ds.attrs["coverage"], len(problems))

"""Import a FIQA tool's score file for a dataset, reporting every unmatched entry."""

from amva.io import read_dataset, write_csv, write_dataset
from amva.quality.config import import_arguments
from amva.quality.scores_file import import_scores
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    spec = sm.params.spec
    (scores,) = sm.input.scores
    faces = read_dataset(sm.input.faces, required=("pixels",))
    ids = faces["image"].values.tolist()
    ds, problems = import_scores(ids, scores, method=sm.wildcards.fiqa, **import_arguments(spec))
    write_csv(problems, sm.output.problems)
    write_dataset(ds, sm.output.quality, spec)
    log.info("imported %s: coverage %.3f, %d problem rows", scores, ds.attrs["coverage"], len(problems))

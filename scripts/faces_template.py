"""A dataset aligned to another model template (dlib150): the images of faces.nc, re-aligned."""

import numpy as np

from amva.datasets.build import build_dataset
from amva.io import write_dataset
from amva.runlog import log_to
from amva.stream import open_lazy

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log, open_lazy(sm.input.reference) as reference:
    template = sm.wildcards.template
    faces, _, _ = build_dataset(sm.params.spec, sm.input.sources, seed=sm.params.seed, template=template)
    expected = reference["image"].values
    if not np.array_equal(faces["image"].values, expected):
        differ = sorted(set(faces["image"].values.tolist()) ^ set(expected.tolist()))[:5]
        raise ValueError(
            f"{sm.input.reference}: aligning to {template} gave other images than this file "
            f"(first differences {differ}, or another order); re-run the faces rule for {sm.wildcards.dataset}"
        )
    config = {"dataset": sm.wildcards.dataset, **sm.params.spec, "seed": sm.params.seed, "template": template}
    write_dataset(faces, sm.output[0], config)
    log.info("%d faces aligned to %s (%d x %d px)", faces.sizes["image"], template, faces.sizes["y"], faces.sizes["x"])

"""A dataset aligned to another model template (dlib150): the images of faces.nc, re-aligned chunk by chunk."""

from amva.datasets.build import DatasetBuild
from amva.runlog import log_to
from amva.stream import ChunkedWriter, open_lazy

sm = snakemake  # noqa: F821
template = sm.wildcards.template
config = {"dataset": sm.wildcards.dataset, **sm.params.spec, "seed": sm.params.seed, "template": template}
with log_to(sm.log[0]) as log, open_lazy(sm.input.reference) as reference, ChunkedWriter(sm.output[0], config) as out:
    build = DatasetBuild(sm.params.spec, sm.input.sources, seed=sm.params.seed, template=template)
    for chunk in build.chunks():
        out.append(chunk)
    expected = reference["image"].values.tolist()
    if build.ids != expected:  # raised inside the writer: nothing is published
        differ = sorted(set(build.ids) ^ set(expected))[:5]
        raise ValueError(
            f"{sm.input.reference}: aligning to {template} gave other images than this file "
            f"(first differences {differ}, or another order); re-run the faces rule for {sm.wildcards.dataset}"
        )
    log.info("%d faces aligned to %s", out.images, template)

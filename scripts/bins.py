"""Split a dataset's images into quality bins for one FIQA instance, with each bin's make-up."""

from amva.bins import bins_dataset, group_labels
from amva.io import read_dataset, write_dataset
from amva.runlog import log_to
from amva.stream import open_lazy

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log, open_lazy(sm.input.faces) as faces:
    cfg = sm.params.bins
    groups = group_labels(faces, cfg["group"])
    quality = read_dataset(sm.input.quality, required=("quality",))
    ds = bins_dataset(quality, cfg["mode"], cfg["k"], cfg["n"], groups, cfg["group"])
    write_dataset(ds, sm.output[0], cfg)
    for name in ds["bin_name"].values:
        b = ds.sel(bin_name=name)
        log.info(
            "bin %s: %d images from %d groups (%s), largest %s (%.0f%%)",
            name,
            b["bin_size"],
            b["bin_groups"],
            cfg["group"],
            b["largest_group"].item(),
            100 * b["largest_group_share"],
        )
    log.info(
        "make-up distance (TVD) of %s and %s: %.3f; groups left out: %d",
        *ds["bin_name"].values[[0, -1]],
        ds["makeup_tvd"],
        ds.attrs["groups_left_out"],
    )

"""Report figures of one AMVA result: map panel, region chart, distributions, profiles, deviations."""

from amva.io import read_dataset
from amva.report.charts import density_chart, profile_chart, region_chart, write_svg
from amva.report.maps import deviation_gallery, stat_panel, write_png
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    ds = read_dataset(
        sm.input.variation,
        required=("maps", "region_mean", "bin_of_image", "amv_density", "deviation", "deviation_image"),
    )
    faces = read_dataset(sm.input.faces, required=("pixels",))
    w = sm.wildcards
    title = f"{w.dataset} · {w.model} · {w.cam} · {w.fiqa}"
    write_png(stat_panel(ds, faces, sm.params.colormap), sm.output.maps)
    write_png(deviation_gallery(ds, faces, sm.params.gallery), sm.output.deviations)
    write_svg(region_chart(ds, title), sm.output.regions)
    write_svg(density_chart(ds, title), sm.output.density)
    write_svg(profile_chart(ds, title), sm.output.profiles)

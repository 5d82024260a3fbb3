"""Report figures of one AMVA result: the map panel and the inside/outside chart."""

from amva.io import read_dataset
from amva.report.charts import region_chart, write_svg
from amva.report.maps import stat_panel, write_png
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    ds = read_dataset(sm.input.amva, required=("maps", "region_mean", "bin_of_image"))
    faces = read_dataset(sm.input.faces, required=("pixels",))
    write_png(stat_panel(ds, faces), sm.output.maps)
    w = sm.wildcards
    write_svg(region_chart(ds, f"{w.dataset} · {w.model} · {w.cam} · {w.fiqa}"), sm.output.regions)

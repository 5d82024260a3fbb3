"""The "Can these maps be trusted?" figures of one (dataset, model, CAM)."""

from amva.io import read_dataset
from amva.report.charts import write_svg
from amva.report.maps import write_png
from amva.report.trust import cascade_panel, trust_chart
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]):
    ds = read_dataset(sm.input.trust, required=("example_maps", "spearman", "spearman_median"))
    faces = read_dataset(sm.input.faces, required=("pixels",))
    w = sm.wildcards
    write_png(cascade_panel(ds, faces, sm.params.colormap), sm.output.maps)
    write_svg(trust_chart(ds, f"{w.dataset} · {w.model} · {w.cam}: can these maps be trusted?"), sm.output.chart)

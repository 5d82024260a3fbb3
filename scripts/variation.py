"""The AMVA statistics of one (dataset, model, CAM, FIQA)."""

from amva.io import read_dataset, write_dataset
from amva.runlog import log_to
from amva.variation import amva, face_mask

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    cams = read_dataset(sm.input.cam, required=("maps",))
    bins = read_dataset(sm.input.bins, required=("bin", "bin_name"))
    mask = face_mask(cams.sizes["y"], sm.params.face_mask["margin"])
    ds = amva(cams["maps"], bins, mask)
    ds.attrs.update(layer=cams.attrs["layer"], target=cams.attrs["target"], cam_method=cams.attrs["cam_method"])
    write_dataset(ds, sm.output[0], {"face_mask": sm.params.face_mask, **sm.wildcards})
    log.info("outside/inside AM-V ratio: %s", ds["outside_inside_ratio"].sel(stat="amv").to_series().to_dict())

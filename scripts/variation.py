"""The AMVA statistics of one (dataset, model, CAM, FIQA)."""

from amva.io import read_dataset, write_dataset
from amva.runlog import log_to
from amva.stream import open_lazy
from amva.variation import amva, face_mask

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log, open_lazy(sm.input.cam, required=("maps",)) as cams:  # binned maps read, not all
    bins = read_dataset(sm.input.bins, required=("bin", "bin_name"))
    mask = face_mask(cams.sizes["y"], sm.params.face_mask["margin"], sm.params.template)
    n_boot, n_perm = sm.params.statistics["n_boot"], sm.params.statistics["n_perm"]  # schema defaults
    ds = amva(cams["maps"], bins, mask, seed=int(sm.params.seed), n_boot=n_boot, n_perm=n_perm)
    ds.attrs.update(layer=cams.attrs["layer"], target=cams.attrs["target"], cam_method=cams.attrs["cam_method"])
    config = {
        "face_mask": {**sm.params.face_mask, "template": sm.params.template},
        "statistics": {"n_boot": n_boot, "n_perm": n_perm},
        "seed": int(sm.params.seed),
        **sm.wildcards,
    }
    write_dataset(ds, sm.output[0], config)
    log.info("outside/inside AM-V ratio: %s", ds["outside_inside_ratio"].sel(stat="amv").to_series().to_dict())
    log.info(
        "permutation test (%s, %d permutations): T = %.4g, p = %.4g; ratio difference = %.4g, p = %.4g",
        ds.attrs["contrast_bins"],
        n_perm,
        ds["perm_statistic"].item(),
        ds["perm_p_value"].item(),
        ds["perm_ratio_statistic"].item(),
        ds["perm_ratio_p_value"].item(),
    )

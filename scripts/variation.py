"""The AMVA statistics of one (dataset, model, CAM, FIQA)."""

from contextlib import nullcontext

from amva.face_mask import face_mask
from amva.io import read_dataset, write_dataset
from amva.runlog import log_to
from amva.stream import open_lazy
from amva.variation import PER_IMAGE, variation

sm = snakemake  # noqa: F821
with (
    log_to(sm.log[0]) as log,
    open_lazy(sm.input.cam, required=("maps",)) as cams,  # binned maps read, not all
    open_lazy(sm.input.trust) if sm.input.trust else nullcontext() as trust,  # null model and faithfulness
):
    per_image = {
        name: src[name].load() for src in (cams, trust) if src is not None for name in PER_IMAGE if name in src
    }
    bins = read_dataset(sm.input.bins, required=("bin", "bin_name"))
    mask = face_mask(cams.sizes["y"], sm.params.face_mask["margin"], sm.params.template)
    stats = sm.params.statistics  # schema defaults filled
    ds = variation(
        cams["maps"],
        bins,
        mask,
        int(sm.params.seed),
        stats["n_boot"],
        stats["n_perm"],
        stats["min_groups"],
        stats["deviation_maps"],
        per_image,  # maps made before amva recorded baseline_r have none
        trust["null_maps"] if trust is not None and "null_maps" in trust else None,
    )
    ds.attrs.update(layer=cams.attrs["layer"], target=cams.attrs["target"], cam_method=cams.attrs["cam_method"])
    config = {
        "face_mask": {**sm.params.face_mask, "template": sm.params.template},
        "statistics": dict(stats),
        "seed": int(sm.params.seed),
        **sm.wildcards,
    }
    write_dataset(ds, sm.output[0], config)
    log.info("outside/inside AM-V ratio: %s", ds["outside_inside_ratio"].sel(stat="amv").to_series().to_dict())
    log.info("inference: %s", ds.attrs["inference"])
    log.info(
        "permutation test (%s): T = %.4g, p = %.4g (%d movable groups), image-level p = %.4g; 95%% CI of T %s",
        ds.attrs["contrast_bins"],
        ds["perm_statistic"].item(),
        ds["perm_p_value"].item(),
        ds["perm_groups"].item(),
        ds["perm_p_value_image_level"].item(),
        ds["contrast_ci"].values.round(4).tolist(),
    )
    if "contrast_minus_null" in ds:
        log.info(
            "null model: T = %.4g, p = %.4g; trained - null = %.4g, 95%% CI %s",
            ds["null_perm_statistic"].item(),
            ds["null_perm_p_value"].item(),
            ds["contrast_minus_null"].item(),
            ds["contrast_minus_null_ci"].values.round(4).tolist(),
        )

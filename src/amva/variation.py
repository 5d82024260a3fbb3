"""The AMVA statistics of quality bins (Fu & Damer, WACVW 2022), with grouped inference.

Activation maps are an ``xarray.DataArray`` with dims ``(image, y, x)`` and values in
[0, 1]; bins are a :func:`amva.bins.bins_dataset`. Intervals and p-values come twice:
grouped (the bins' grouping label: stratified / cluster permutation and cluster
bootstrap, :mod:`amva.resampling`) and image-level (every image its own group), so a
reader can see what ignoring who is in the bins would have claimed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from amva.bins import NO_GROUPS
from amva.face_mask import region_weights
from amva.io import UNIT_RANGE
from amva.kde import gaussian_kde, kde_mass, scott_bandwidth
from amva.resampling import Design, bootstrap_medians, bootstrap_region_means, permutation_test

STATS = ("mam", "amv", "median", "std_mad")
REGIONS = ("inside", "outside")
LEVELS = {"": "grouped", "_image_level": "image-level"}  # variable suffix: what the inference resamples
MAKEUP = ("bin_groups", "largest_group", "largest_group_share", "bin_ties")  # per-bin make-up copied from the bins


def lower_median(maps: np.ndarray) -> np.ndarray:
    """Pixel-wise lower median over axis 0 (torch.median's choice for even N)."""
    return np.sort(maps, axis=0)[(maps.shape[0] - 1) // 2]


def set_statistics(maps: np.ndarray) -> np.ndarray:
    """MAM, AM-V (ddof=1), median and std_mad of one set's maps ``(N, h, w)``."""
    if maps.shape[0] < 2:
        raise ValueError(f"a set needs at least 2 maps for its variation, got {maps.shape[0]}")
    med = lower_median(maps)
    return np.stack([maps.mean(axis=0), maps.std(axis=0, ddof=1), med, ((maps - med) ** 2).std(axis=0, ddof=1)])


CI_LEVEL = 0.95
_BOUNDS = ((1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2)  # the percentile interval's quantiles
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
KDE_POINTS = 200  # the KDE grid's minimum size
KDE_MAX_POINTS = 2001
_DEVIATION_CHUNK = 512  # images per read of lazily opened maps
_UNITLESS = "1"  # CF notation: activation maps are dimensionless, in [0, 1]


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} = {value!r}: give an integer >= 0")
    return int(value)


def variation(
    maps: xr.DataArray,
    bins: xr.Dataset,
    mask: xr.DataArray,
    seed: int = 0,
    n_boot: int = 1000,
    n_perm: int = 1000,
    min_groups: int = 5,
    deviation_maps: str = "low",
    per_image: Mapping[str, xr.DataArray] | None = None,
    null_maps: xr.DataArray | None = None,
) -> xr.Dataset:
    """Per-bin statistic maps, D-AM-V, region means, AM-V distributions, profiles,
    single-image deviations, and their uncertainty at the group and the image level.

    ``maps`` must hold every image ``bins`` puts in a bin (the error names the first
    missing ones). The bootstrap and the permutation test draw from ``seed``;
    ``n_boot = 0`` or ``n_perm = 0`` skips them (NaN results). Bins with fewer than
    ``min_groups`` groups get no interval. The reference of the single-image deviation
    and the HIGH side of the test is the first bin (``high``, or the best quantile bin
    ``qn``); the LOW side is the last (``low``, or ``q1``). ``deviation_maps`` (one of
    :data:`DEVIATION_MAPS`) says whose per-pixel deviation maps are stored. Each of
    ``per_image`` (a value per image, named as in :data:`PER_IMAGE`: the maps' correlation with
    the channel-mean map, their faithfulness) adds its median per bin with a grouped interval.
    ``null_maps`` (the fully randomised model's maps of the same images) add the null arm: the
    same contrast and test on them, and the trained − null difference of contrasts with a
    bootstrap interval that resamples the same groups in both arms.
    """
    n_boot, n_perm = _check_count("n_boot", n_boot), _check_count("n_perm", n_perm)
    min_groups = _check_count("min_groups", min_groups)
    labels = bins["bin"]
    binned = labels[labels != ""]
    missing = np.setdiff1d(binned["image"].values, maps["image"].values)
    if missing.size:
        raise ValueError(
            f"{missing.size} binned images have no activation map (e.g. {', '.join(missing[:3])}); "
            "re-run the CAM step for this FIQA's bins"
        )
    maps = maps.transpose("image", "y", "x")
    names = bins["bin_name"].values.tolist()
    inside = mask.values.astype(bool)
    weights = region_weights(inside)
    members = [binned["image"].values[binned.values == name] for name in names]
    groups = bins["group"] if "group" in bins else labels["image"].astype(str)
    sets = [maps.sel(image=ids).values.astype(np.float64).reshape(-1, inside.size) for ids in members]
    stat_maps = np.stack([set_statistics(x.reshape(-1, *inside.shape)) for x in sets])  # float64
    ds = _result(maps, bins, mask, stat_maps)
    ds.attrs.update(seed=int(seed), n_boot=n_boot, n_perm=n_perm, min_groups=min_groups)
    _regions(ds, inside)
    _distributions(ds, stat_maps[:, STATS.index("amv")], inside)
    if deviation_maps not in DEVIATION_MAPS:
        raise ValueError(f"deviation_maps = {deviation_maps!r}: choose one of {', '.join(DEVIATION_MAPS)}")
    chosen = {"low": members[-1], "binned": binned["image"].values, "all": maps["image"].values}[deviation_maps]
    kept = np.isin(maps["image"].values, chosen)
    _deviations(ds, maps, stat_maps[0, STATS.index("mam")], inside, weights, names[0], kept)
    ds.attrs["deviation_maps"] = deviation_maps
    set_groups = [groups.sel(image=ids).values.astype(str) for ids in members]
    _uncertainty(ds, sets, set_groups, [ids.astype(str) for ids in members], weights)
    for name, value in (per_image or {}).items():
        values = [value.reindex(image=ids).values.astype(np.float64) for ids in members]
        _median_by_bin(ds, name, values, set_groups)
    if null_maps is not None:
        null_sets = [null_maps.sel(image=ids).values.astype(np.float64).reshape(-1, inside.size) for ids in members]
        _null_arm(ds, sets, null_sets, set_groups, weights)
    return ds


PER_IMAGE = ("baseline_r", "deletion_faithfulness", "insertion_faithfulness")
"""The per-image values a result summarises per bin (medians with grouped intervals)."""


def _median_by_bin(ds: xr.Dataset, name: str, values: list[np.ndarray], groups: list[np.ndarray]) -> None:
    """Per bin: the median of a per-image value, its grouped 95% interval (none below
    ``min_groups`` groups) and how many images have one (a constant map has no correlation,
    an image outside the faithfulness sample no curve)."""
    if name not in PER_IMAGE:
        raise ValueError(f"per-image value {name!r}: use one of {', '.join(PER_IMAGE)}")
    ci = np.full((len(values), 2), np.nan)
    if ds.attrs["n_boot"] > 0:
        seed = np.random.SeedSequence([ds.attrs["seed"], 2 + PER_IMAGE.index(name)])
        replicates = bootstrap_medians(values, groups, ds.attrs["n_boot"], seed)
        for b, v in enumerate(values):
            if len(np.unique(groups[b][np.isfinite(v)])) >= ds.attrs["min_groups"]:
                ci[b] = np.nanquantile(replicates[:, b], _BOUNDS)
    finite = [v[np.isfinite(v)] for v in values]
    median = [float(np.median(v)) if v.size else np.nan for v in finite]
    ds[f"{name}_median"] = ("bin", median, _ATTRS[f"{name}_median"])
    ds[f"{name}_median_ci"] = (
        ("bin", "bound"),
        ci,
        {**_ATTRS[f"{name}_median"], "inference": ds.attrs["inference"]},
    )
    ds[f"{name}_maps"] = ("bin", [v.size for v in finite], {"description": "images of the bin with a value"})


def _null_arm(
    ds: xr.Dataset,
    sets: list[np.ndarray],
    null_sets: list[np.ndarray],
    groups: list[np.ndarray],
    weights: np.ndarray,
) -> None:
    """The contrast, its interval and grouped test on the null model's maps, and trained − null.

    Both arms draw the same bootstrap resamples (same seed, same groups), so the difference's
    interval is paired; the null arm's permutation test uses the trained arm's permutations.
    """
    null = _inference(ds, null_sets, groups, weights)
    outside = np.stack([s.std(axis=0, ddof=1) @ weights[:, 1] for s in null_sets])
    ds["null_region_mean"] = (("bin",), outside, _ATTRS["null_region_mean"])
    ds["null_contrast_ci"] = (("bound",), null["contrast_ci"][1], _ATTRS["null_contrast_ci"])
    ds["null_perm_statistic"] = ((), null["perm_statistic"][1], _ATTRS["null_perm_statistic"])
    ds["null_perm_p_value"] = ((), null["perm_p_value"][1], _ATTRS["null_perm_p_value"])
    diff_ci = np.full(2, np.nan)
    if ds.attrs["n_boot"] > 0 and ds.attrs["enough_groups"]:
        stream = np.random.SeedSequence(ds.attrs["seed"]).spawn(2)[0]
        trained, random = (
            bootstrap_region_means(arm, groups, weights, ds.attrs["n_boot"], stream) for arm in (sets, null_sets)
        )
        contrast = [r[-1][1][:, 1] - r[0][1][:, 1] for r in (trained, random)]
        diff_ci = np.nanquantile(contrast[0] - contrast[1], _BOUNDS)
    ds["contrast_minus_null"] = (
        (),
        ds["perm_statistic"].item() - null["perm_statistic"][1],
        _ATTRS["contrast_minus_null"],
    )
    ds["contrast_minus_null_ci"] = (("bound",), diff_ci, _ATTRS["contrast_minus_null"])
    for name in ("null_contrast_ci", "null_perm_p_value", "contrast_minus_null_ci"):
        ds[name].attrs.update(inference=ds["contrast_ci"].attrs["inference"], seed=ds.attrs["seed"])


def _result(maps: xr.DataArray, bins: xr.Dataset, mask: xr.DataArray, stat_maps: np.ndarray) -> xr.Dataset:
    """The statistic maps with the bins' sizes, score ranges and make-up as coordinates."""
    labels = bins["bin"]
    names = bins["bin_name"].values.tolist()
    image_ids = pd.Index(labels["image"].values).append(
        pd.Index(np.setdiff1d(maps["image"].values, labels["image"].values))
    )
    per_bin = [c for c in ("bin_size", "score_min", "score_max", *MAKEUP) if c in bins.coords]
    ds = xr.Dataset(
        {
            "maps": (("bin", "stat", "y", "x"), stat_maps.astype(np.float32), _ATTRS["maps"]),
            "face_mask": mask.astype(np.int8),
            "bin_of_image": labels.reindex(image=image_ids, fill_value=""),
        },
        coords={
            "bin": ("bin", names, _ATTRS["bin"]),
            "stat": ("stat", list(STATS), _ATTRS["stat"]),
            "y": ("y", maps["y"].values, _ATTRS["y"]),
            "x": ("x", maps["x"].values, _ATTRS["x"]),
            **{c: ("bin", bins[c].values, bins[c].attrs) for c in per_bin},
        },
        attrs={
            "ci_level": CI_LEVEL,
            "reference_bin": names[0],
            "contrast_bins": f"{names[-1]} vs {names[0]}",
            "group_by": str(bins.attrs.get("group_by", NO_GROUPS)),
        },
    )
    if "makeup_tvd" in bins:
        ds["makeup_tvd"] = bins["makeup_tvd"]
    ds["face_mask"].attrs = {**mask.attrs, "description": "1 inside the central-face ellipse, 0 outside"}
    ds["bin_of_image"].attrs = _ATTRS["bin_of_image"]
    return ds


def _regions(ds: xr.Dataset, inside: np.ndarray) -> None:
    """Region means of every statistic map, their outside/inside ratio, and D-AM-V of HIGH/LOW."""
    region = np.stack([ds["maps"].values[..., inside].mean(-1), ds["maps"].values[..., ~inside].mean(-1)], -1)
    ds["region_mean"] = (("bin", "stat", "region"), region, _ATTRS["region_mean"])
    ds.coords["region"] = ("region", list(REGIONS), _ATTRS["region"])
    ds["outside_inside_ratio"] = ds["region_mean"].sel(region="outside") / ds["region_mean"].sel(region="inside")
    ds["outside_inside_ratio"].attrs = _ATTRS["outside_inside_ratio"]
    if ds["bin"].values.tolist() == ["high", "low"]:
        amv = ds["maps"].sel(stat="amv").values
        d = np.abs(amv[0] - amv[1])
        ds["d_amv"] = (("y", "x"), d, _ATTRS["d_amv"])
        ds["d_amv_normalised"] = (("y", "x"), d / d.max() if d.max() > 0 else d, _ATTRS["d_amv_normalised"])


def _distributions(ds: xr.Dataset, amv: np.ndarray, inside: np.ndarray) -> None:
    """KDE, quantiles and x / y profiles of each bin's AM-V map ``amv (bin, y, x)``."""
    flat = amv.reshape(amv.shape[0], -1)
    h = np.array([scott_bandwidth(v) for v in flat])
    top = float(np.max(flat.max(axis=1) + 3 * np.nan_to_num(h)))
    top = top if top > 0 else 1.0
    # at least KDE_POINTS, and at least 2 points per bandwidth of the narrowest KDE (capped)
    narrow = float(h[h > 0].min()) if (h > 0).any() else top
    points = int(np.clip(np.ceil(2 * top / narrow) + 1, KDE_POINTS, KDE_MAX_POINTS))
    grid = np.linspace(0.0, top, points)
    density = np.stack([gaussian_kde(v, grid, b) for v, b in zip(flat, h, strict=True)])
    ds.coords["amv_value"] = ("amv_value", grid, {"description": "AM-V value of the KDE grid", "units": _UNITLESS})
    ds["amv_density"] = (("bin", "amv_value"), density)
    ds["amv_density"].attrs = {
        "description": (
            "Gaussian KDE of the bin's AM-V pixel values (all pixels of its AM-V map), Scott's bandwidth "
            "std(ddof=1) * n^(-1/5), no boundary correction; the grid runs from 0 to the largest AM-V plus "
            "3 bandwidths, so only the mass below 0 is off the grid (see amv_density_mass); it has 200 "
            "points, or 2 per bandwidth of the narrowest bin's KDE where that is more (at most 2001)"
        ),
        "units": _UNITLESS,  # per unit AM-V, itself dimensionless
    }
    ds["amv_bandwidth"] = (("bin",), h, {"description": "KDE bandwidth (Scott's rule)", "units": _UNITLESS})
    ds["amv_density_mass"] = (
        ("bin",),
        np.array([kde_mass(v, grid[0], grid[-1], b) for v, b in zip(flat, h, strict=True)]),
        {
            "description": "exact share of the KDE's mass on the grid's range (the rest lies below AM-V 0)",
            "units": _UNITLESS,
        },
    )
    regions = (inside.ravel(), ~inside.ravel())  # REGIONS order
    quant = np.array([[np.quantile(v[m], QUANTILES) for m in regions] for v in flat])
    ds.coords["quantile"] = ("quantile", list(QUANTILES), {"description": "probability of the quantile"})
    ds["amv_quantile"] = (("bin", "region", "quantile"), quant)
    ds["amv_quantile"].attrs = {
        "description": "quantiles (linear interpolation) of the AM-V pixel values inside / outside the face mask",
        "units": _UNITLESS,
    }
    ds["profile_x"] = (("bin", "x"), amv.sum(axis=1))
    ds["profile_x"].attrs = {"description": "s_x(x) = sum over y of the bin's AM-V map", "units": _UNITLESS}
    ds["profile_y"] = (("bin", "y"), amv.sum(axis=2))
    ds["profile_y"].attrs = {"description": "s_y(y) = sum over x of the bin's AM-V map", "units": _UNITLESS}


DEVIATION_MAPS = ("low", "binned", "all")
"""Whose per-pixel deviation maps a result stores: the last bin's images (what the report's gallery
draws from), every binned image, or every image with a map. Region summaries cover every image."""


def _deviations(
    ds: xr.Dataset,
    maps: xr.DataArray,
    reference: np.ndarray,
    inside: np.ndarray,
    weights: np.ndarray,
    ref_bin: str,
    kept: np.ndarray,
) -> None:
    """δ_i = |MAM(reference bin) − A_i|: its region summaries for every image with a map, its
    per-pixel map for the images ``kept`` (a bool per image of ``maps``).

    ``maps`` may be lazy (a file opened, not loaded): they are read ``_DEVIATION_CHUNK``
    images at a time, so memory grows with the kept maps only, not with the dataset.
    """
    n = maps.sizes["image"]
    dev = np.empty((int(kept.sum()), inside.size), dtype=np.float32)
    region = np.empty((n, 2))  # (image, 2): inside, outside means
    ref = reference.ravel().astype(np.float32)
    done = 0
    for start in range(0, n, _DEVIATION_CHUNK):
        part = slice(start, start + _DEVIATION_CHUNK)
        flat = maps.isel(image=part).values.reshape(-1, inside.size).astype(np.float32, copy=False)
        chunk = np.abs(ref - flat)
        region[part] = chunk.astype(np.float64) @ weights
        keep = chunk[kept[part]]
        dev[done : done + len(keep)] = keep
        done += len(keep)
    total = region[:, 0] * inside.sum() + region[:, 1] * (~inside).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, region[:, 1] * (~inside).sum() / total, np.nan)
    coords = {"image": maps["image"].values}
    ref = f"MAM of bin {ref_bin!r}"
    ds["deviation"] = xr.DataArray(
        dev.reshape(-1, *maps.shape[1:]),
        coords={"deviation_image": maps["image"].values[kept]},
        dims=("deviation_image", "y", "x"),
    )
    ds["deviation"].attrs = {
        "description": f"single-image deviation |{ref} - A_i| per pixel, for the images of deviation_image "
        "(the statistics option deviation_maps chooses them). The paper shows it normalised by each image's max.",
        "reference_bin": ref_bin,
        "units": _UNITLESS,
        "range": UNIT_RANGE,
    }
    ds["deviation_image"].attrs = {"description": "the images whose deviation map is stored"}
    for name, values, desc, units in (
        ("deviation_inside", region[:, 0], "mean deviation over the pixels inside the face mask", _UNITLESS),
        ("deviation_outside", region[:, 1], "mean deviation over the pixels outside the face mask", _UNITLESS),
        ("deviation_outside_share", share, "share of the image's summed deviation outside the face mask", _UNITLESS),
    ):
        ds[name] = xr.DataArray(values, coords=coords, dims="image").reindex(image=ds["image"].values)
        ds[name].attrs = {"description": f"{desc} (reference: {ref}); NaN for images without a map", "units": units}


def _uncertainty(
    ds: xr.Dataset, sets: list[np.ndarray], groups: list[np.ndarray], images: list[np.ndarray], weights: np.ndarray
) -> None:
    """Bootstrap intervals and the LOW/HIGH permutation test, grouped and image-level.

    When every group is one image the two coincide: computed once, stored under both names.
    """
    grouped = Design(groups)
    ds["bin_groups_used"] = ("bin", [grouped.groups_in(b) for b in range(len(sets))], _ATTRS["bin_groups_used"])
    enough = min(grouped.groups_in(0), grouped.groups_in(len(sets) - 1)) >= ds.attrs["min_groups"]
    ds.attrs["enough_groups"] = int(enough)
    if grouped.singletons():
        ds.attrs["inference"] = "every group is one image: grouped and image-level inference coincide"
        results = dict.fromkeys(LEVELS, _inference(ds, sets, images, weights))
    else:
        ds.attrs["inference"] = (
            f"grouped by {ds.attrs['group_by']}: stratified/cluster permutation and cluster bootstrap; "
            "the *_image_level variables ignore the groups"
        )
        results = {"": _inference(ds, sets, groups, weights), "_image_level": _inference(ds, sets, images, weights)}
    ds.coords["bound"] = ("bound", ["lower", "upper"], {"description": "interval bounds"})
    for suffix, res in results.items():
        level = LEVELS[suffix]
        for name, (dims, values) in res.items():
            attrs = {"units": _UNITLESS, **_ATTRS[name], "inference": level, "seed": ds.attrs["seed"]}
            ds[name + suffix] = (dims, values, {**attrs, "n_boot": ds.attrs["n_boot"], "n_perm": ds.attrs["n_perm"]})


def _inference(
    ds: xr.Dataset, sets: list[np.ndarray], groups: list[np.ndarray], weights: np.ndarray
) -> dict[str, tuple[tuple[str, ...], np.ndarray | float]]:
    """Intervals (NaN for bins with fewer than ``min_groups`` groups) and the test, for one grouping."""
    n_boot, n_perm, min_groups = ds.attrs["n_boot"], ds.attrs["n_perm"], ds.attrs["min_groups"]
    boot_stream, perm_stream = np.random.SeedSequence(ds.attrs["seed"]).spawn(2)
    design = Design(groups)
    ci = np.full((len(sets), len(STATS), len(REGIONS), 2), np.nan)
    ratio_ci = np.full((len(sets), len(STATS), 2), np.nan)
    contrast_ci = np.full(2, np.nan)
    if n_boot > 0:
        replicates = bootstrap_region_means(sets, groups, weights, n_boot, boot_stream)
        ok = [design.groups_in(b) >= min_groups for b in range(len(sets))]
        for b, (mam, amv) in enumerate(replicates):
            if not ok[b]:
                continue
            for stat, rep in (("mam", mam), ("amv", amv)):
                ci[b, STATS.index(stat)] = np.nanquantile(rep, _BOUNDS, axis=0).T
                with np.errstate(divide="ignore", invalid="ignore"):  # a resample with no inside variation
                    ratio_ci[b, STATS.index(stat)] = np.nanquantile(rep[:, 1] / rep[:, 0], _BOUNDS)
        if ok[0] and ok[-1]:
            contrast_ci = np.nanquantile(replicates[-1][1][:, 1] - replicates[0][1][:, 1], _BOUNDS)
    nan_test = dict.fromkeys(("perm_statistic", "perm_p_value", "perm_ratio_statistic", "perm_ratio_p_value"), np.nan)
    test = (
        permutation_test(sets[0], sets[-1], weights, n_perm, perm_stream, groups[0], groups[-1])
        if n_perm > 0
        else {**nan_test, "perm_groups": 0}
    )
    return {
        "region_mean_ci": (("bin", "stat", "region", "bound"), ci),
        "outside_inside_ratio_ci": (("bin", "stat", "bound"), ratio_ci),
        "contrast_ci": (("bound",), contrast_ci),
        **{name: ((), value) for name, value in test.items()},
    }


_GROUPING = (
    "resampled as amva.resampling says: whole groups (a group with images in both bins keeps them; "
    "one wholly in one bin moves as a unit); image-level: every image its own group"
)
_ATTRS: dict[str, dict[str, str]] = {
    "maps": {"description": "per-bin mean (MAM), std ddof=1 (AM-V), lower median, std_mad", "units": _UNITLESS},
    "bin": {"description": "quality bin, best first"},
    "stat": {"description": "pixel-wise statistic over the bin's maps"},
    "y": {"description": "pixel row in the aligned face", "units": "pixel"},
    "x": {"description": "pixel column in the aligned face", "units": "pixel"},
    "region": {"description": "pixels inside / outside the face mask"},
    "bin_of_image": {"description": "quality bin of the image; empty when in none"},
    "region_mean": {"description": "mean over the pixels inside / outside the face mask", "units": _UNITLESS},
    "outside_inside_ratio": {
        "description": "region_mean outside / region_mean inside the face mask",
        "units": _UNITLESS,
    },
    "d_amv": {"description": "|AM-V(high) - AM-V(low)|", "units": _UNITLESS},
    "d_amv_normalised": {"description": "D-AM-V / its max", "units": _UNITLESS},
    "bin_groups_used": {"description": "distinct groups among the bin's images behind its interval", "units": "count"},
    "baseline_r_median": {
        "description": "median over the bin's maps of their Pearson r with the channel-mean map (CAM activation_mean); "
        "near 1: the CAM's channel weights do not change the maps; interval: 95% cluster bootstrap over the groups",
        "units": _UNITLESS,
    },
    "deletion_faithfulness_median": {
        "description": "median over the bin's images of the deletion faithfulness (random-order AUC minus the map's; "
        "> 0: the map ranks what the embedding uses better than chance); interval: 95% cluster bootstrap",
        "units": _UNITLESS,
    },
    "insertion_faithfulness_median": {
        "description": "median over the bin's images of the insertion faithfulness (the map's AUC minus the random "
        "orders'); interval: 95% cluster bootstrap",
        "units": _UNITLESS,
    },
    "null_region_mean": {
        "description": "outside-mask mean AM-V of each bin's maps from the fully randomised model (the null model)",
        "units": _UNITLESS,
    },
    "null_contrast_ci": {"description": "contrast_ci of the null model's maps (same resamples)", "units": _UNITLESS},
    "null_perm_statistic": {"description": "perm_statistic of the null model's maps", "units": _UNITLESS},
    "null_perm_p_value": {"description": "perm_p_value of the null model's maps (same permutations)"},
    "contrast_minus_null": {
        "description": "perm_statistic minus null_perm_statistic: the LOW - HIGH outside AM-V contrast the trained "
        "model adds to what the same images give a randomly initialised one; interval: 95% bootstrap with the "
        "same group resamples in both arms (paired)",
        "units": _UNITLESS,
    },
    "region_mean_ci": {
        "description": f"bootstrap {CI_LEVEL:.0%} percentile interval of region_mean, {_GROUPING}; statistic "
        "maps recomputed per resample, AM-V replicates scaled by AM-V / their mean (the bootstrap's estimate "
        "of the duplicates' downward bias); only mam and amv; NaN for bins with fewer than min_groups groups"
    },
    "outside_inside_ratio_ci": {
        "description": f"bootstrap {CI_LEVEL:.0%} percentile interval of outside_inside_ratio from the same "
        "resamples as region_mean_ci; only mam and amv"
    },
    "contrast_ci": {
        "description": f"bootstrap {CI_LEVEL:.0%} percentile interval of perm_statistic (outside AM-V of the last "
        "bin minus the first's) from the same resamples; NaN when either bin has fewer than min_groups groups"
    },
    "perm_statistic": {"description": "T = outside-mask mean AM-V of the last bin minus that of the first"},
    "perm_p_value": {
        "description": f"one-sided permutation p-value of T, labels {_GROUPING}: (1 + #{{T_perm >= T}}) / (1 + n_perm)"
    },
    "perm_ratio_statistic": {"description": "outside/inside AM-V ratio of the last bin minus that of the first"},
    "perm_ratio_p_value": {"description": "one-sided permutation p-value of the ratio difference, as perm_p_value"},
    "perm_groups": {
        "description": "groups whose bin labels the permutations can move (0: p = 1 by construction)",
        "units": "count",
    },
}

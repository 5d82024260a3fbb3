"""Quality bins and the AMVA statistics (Fu & Damer, WACVW 2022).

Activation maps are an ``xarray.DataArray`` with dims ``(image, y, x)`` and values in
[0, 1]. Quality is a DataArray over ``image`` oriented "higher = better".
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from amva.datasets.align import TEMPLATE_SIZES, template_points

STATS = ("mam", "amv", "median", "std_mad")
REGIONS = ("inside", "outside")


def _bin_count(k: float | int, n: int) -> int:
    """``k`` is a count (int >= 1) or a fraction of the images (0 < k < 1)."""
    if isinstance(k, float) and 0 < k < 1:
        count = round(k * n)
    elif float(k).is_integer() and k >= 1:
        count = int(k)
    else:
        raise ValueError(f"bins.k = {k!r}: give a count >= 1 or a fraction in (0, 1)")
    if count < 2 or 2 * count > n:
        raise ValueError(
            f"bins.k = {k!r} gives {count} images per set from {n} scored images; "
            "each of HIGH and LOW needs at least 2 images and they must not overlap"
        )
    return count


def quality_order(quality: xr.DataArray) -> np.ndarray:
    """Image positions from best to worst; ties broken by image id for determinism."""
    ids = quality["image"].values.astype(str)
    return np.lexsort((ids, -quality.values.astype(np.float64)))


def assign_bins(
    quality: xr.DataArray,
    mode: Literal["high_low", "quantiles"] = "high_low",
    k: float | int = 0.2,
    n: int = 4,
) -> xr.DataArray:
    """Bin label per image ("" for images in no bin).

    ``high_low``: the paper's two equal-size sets, the top and bottom ``k`` of the
    ranking. ``quantiles``: ``n`` equal-count bins ``q1`` (worst) … ``qn`` (best).
    Images without a finite score are in no bin.
    """
    valid = quality.where(np.isfinite(quality), drop=True)
    order = quality_order(valid)
    labels = np.full(valid.sizes["image"], "", dtype=object)
    if mode == "high_low":
        count = _bin_count(k, len(order))
        labels[order[:count]] = "high"
        labels[order[-count:]] = "low"
    elif mode == "quantiles":
        if not 2 <= n <= len(order):
            raise ValueError(f"bins.n = {n}: need 2 <= n <= {len(order)} (the scored images)")
        for rank, chunk in enumerate(np.array_split(order[::-1], n), start=1):
            labels[chunk] = f"q{rank}"
    else:
        raise ValueError(f"bins.mode = {mode!r}: use 'high_low' or 'quantiles'")
    out = xr.DataArray(labels.astype(str), coords={"image": valid["image"]}, dims="image", name="bin")
    return out.reindex(image=quality["image"], fill_value="")


def bin_names(bins: xr.DataArray) -> list[str]:
    """Bins in report order: high before low, quantiles best first."""
    names = sorted({b for b in bins.values.tolist() if b})
    if set(names) == {"high", "low"}:
        return ["high", "low"]
    return sorted(names, key=lambda b: -int(b[1:]))


def face_mask(size: int = 112, margin: float = 0.5, template: str = "arcface112") -> xr.DataArray:
    """Central-face ellipse in the frame of an alignment template (the model's crop).

    The ellipse's centre is the template's centroid of eyes and mouth; its semi-axes are
    half the eye-to-eye and eye-to-mouth spans of the template, grown by ``margin``
    (a fraction). Scaled to ``size`` if maps are not as wide as the template's crop.
    """
    pts = template_points(template) * (size / TEMPLATE_SIZES[template])
    eyes, mouth = pts[:2], pts[3:]
    centre = np.concatenate([eyes, mouth]).mean(axis=0)
    half_w = (eyes[1, 0] - eyes[0, 0]) / 2 * (1 + margin)
    half_h = (mouth[:, 1].mean() - eyes[:, 1].mean()) / 2 * (1 + margin)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    inside = ((xx - centre[0]) / half_w) ** 2 + ((yy - centre[1]) / half_h) ** 2 <= 1.0
    return xr.DataArray(
        inside,
        dims=("y", "x"),
        coords={"y": np.arange(size), "x": np.arange(size)},
        name="face_mask",
        attrs={"description": "True inside the central-face ellipse", "margin": margin, "template": template},
    )


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
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
KDE_POINTS = 200  # the KDE grid's minimum size
KDE_MAX_POINTS = 2001
_BATCH = 128  # resamples / permutations per matmul; bounds memory at ~2 x 128 x pixels float64
_DEVIATION_CHUNK = 512  # images per read of lazily opened maps
_UNITLESS = "1"  # CF notation: activation maps are dimensionless, in [0, 1]


def scott_bandwidth(values: np.ndarray) -> float:
    """Scott's rule for a 1-D Gaussian KDE: std (ddof=1) x n^(-1/5), as scipy's ``gaussian_kde``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(values.std(ddof=1) * values.size ** (-1 / 5))


def gaussian_kde(values: np.ndarray, grid: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    """Plain Gaussian KDE of ``values`` on ``grid`` (Scott's bandwidth unless given).

    No boundary correction: for non-negative values some mass lies below 0, off a grid
    that starts at 0. Returns NaN everywhere when the bandwidth is 0 (constant values).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    grid = np.asarray(grid, dtype=np.float64)
    h = scott_bandwidth(values) if bandwidth is None else float(bandwidth)
    if not h > 0:
        return np.full(grid.shape, np.nan)
    out = np.empty(grid.shape)
    step = max(1, (1 << 22) // max(values.size, 1))  # keep the (grid, values) block small
    for s in range(0, grid.size, step):
        z = (grid[s : s + step, None] - values[None, :]) / h
        out[s : s + step] = np.exp(-0.5 * z * z).sum(axis=1)
    return out / (values.size * h * np.sqrt(2 * np.pi))


def _kde_mass(values: np.ndarray, lo: float, hi: float, h: float) -> float:
    """Exact share of the Gaussian KDE's mass in [lo, hi]."""
    if not h > 0:
        return float("nan")
    erf = np.vectorize(math.erf, otypes=[np.float64])
    scale = h * np.sqrt(2.0)
    return float(np.mean(0.5 * (erf((hi - values) / scale) - erf((lo - values) / scale))))


def _region_weights(inside: np.ndarray) -> np.ndarray:
    """``(pixels, 2)`` weights whose product with a flat map gives its inside / outside means."""
    flat = inside.ravel()
    if flat.all() or not flat.any():
        raise ValueError("the face mask must have pixels both inside and outside")
    return np.stack([flat / flat.sum(), ~flat / (~flat).sum()], axis=1).astype(np.float64)


def _std_from_sums(s1: np.ndarray, s2: np.ndarray, n: int) -> np.ndarray:
    """Pixel-wise std (ddof=1) from the sums of values and squares of ``n`` (centred) maps."""
    var = (s2 - s1 * s1 / n) / (n - 1)
    np.maximum(var, 0.0, out=var)  # rounding can leave tiny negatives where all maps agree
    return np.sqrt(var, out=var)


def _as_rng(seed: int | np.random.SeedSequence) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_region_means(
    x: np.ndarray,
    weights: np.ndarray,
    n_boot: int,
    seed: int | np.random.SeedSequence = 0,
    inflate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of the region means of MAM and AM-V of one set.

    ``x`` is the set's maps ``(N, pixels)``; each replicate draws N images with
    replacement, recomputes the pixel-wise mean and std (ddof=1) and their region means.
    The std goes through per-pixel sums: with the draw counts ``c`` (replicates x N),
    Σa = c @ x and Σa² = c @ x², on maps centred by the set's mean against cancellation.

    A resample's variance (ddof=1) estimates the set's plug-in variance (ddof=0), which is
    (N-1)/N of the set's own AM-V², so plain replicates sit low: with N = 8-16 the percentile
    interval often misses the point estimate. ``inflate`` scales each replicate's variance
    by N/(N-1) (its std by sqrt(N/(N-1))), which makes it unbiased for the set's variance.
    Returns ``(mam, amv)``, each ``(n_boot, 2)`` with columns inside, outside.
    """
    n = x.shape[0]
    rng = _as_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    mam = counts @ (x @ weights) / n
    xc = x - x.mean(axis=0)
    xc2 = xc * xc
    amv = np.empty((n_boot, 2))
    for s in range(0, n_boot, _BATCH):
        c = counts[s : s + _BATCH]
        amv[s : s + _BATCH] = _std_from_sums(c @ xc, c @ xc2, n) @ weights
    if inflate:
        amv *= np.sqrt(n / (n - 1))
    return mam, amv


def permutation_test(
    x_a: np.ndarray, x_b: np.ndarray, weights: np.ndarray, n_perm: int, seed: int | np.random.SeedSequence = 0
) -> dict[str, float]:
    """Permutation test that set ``b`` (LOW) has more AM-V outside the face than ``a`` (HIGH).

    Statistics: T = outside mean AM-V(b) − outside mean AM-V(a), and
    R = outside/inside AM-V ratio(b) − ratio(a). The pooled maps' labels are shuffled
    ``n_perm`` times (set sizes kept); one-sided p = (1 + #{T_perm ≥ T}) / (1 + n_perm).
    The observed statistics go through the same sums as the permuted ones, and ties are
    counted with a relative tolerance of 1e-9 so that label swaps that leave the split
    unchanged count as ties despite rounding.
    """
    n_a, n_b = x_a.shape[0], x_b.shape[0]
    pooled = np.concatenate([x_a, x_b])
    n = n_a + n_b
    xc = pooled - pooled.mean(axis=0)
    xc2 = xc * xc
    tot1, tot2 = xc.sum(axis=0), xc2.sum(axis=0)
    rng = _as_rng(seed)
    order = rng.permuted(np.tile(np.arange(n), (n_perm, 1)), axis=1)
    member = np.zeros((n_perm + 1, n))
    member[0, :n_a] = 1.0  # row 0: the observed split
    np.put_along_axis(member[1:], order[:, :n_a], 1.0, axis=1)
    t = np.empty(n_perm + 1)
    r = np.empty(n_perm + 1)
    for s in range(0, n_perm + 1, _BATCH):
        g = member[s : s + _BATCH]
        s1, s2 = g @ xc, g @ xc2
        reg_a = _std_from_sums(s1, s2, n_a) @ weights
        reg_b = _std_from_sums(tot1 - s1, tot2 - s2, n_b) @ weights
        t[s : s + _BATCH] = reg_b[:, 1] - reg_a[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r[s : s + _BATCH] = reg_b[:, 1] / reg_b[:, 0] - reg_a[:, 1] / reg_a[:, 0]

    def p_value(stat: np.ndarray) -> float:
        if n_perm == 0 or not np.isfinite(stat[0]):
            return float("nan")
        tol = 1e-9 * max(abs(stat[0]), np.finfo(np.float64).tiny)
        return float((1 + np.count_nonzero(stat[1:] >= stat[0] - tol)) / (1 + n_perm))

    return {
        "perm_statistic": float(t[0]),
        "perm_p_value": p_value(t),
        "perm_ratio_statistic": float(r[0]),
        "perm_ratio_p_value": p_value(r),
    }


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} = {value!r}: give an integer >= 0")
    return int(value)


def amva(
    maps: xr.DataArray,
    bins: xr.Dataset,
    mask: xr.DataArray,
    seed: int = 0,
    n_boot: int = 1000,
    n_perm: int = 1000,
) -> xr.Dataset:
    """Per-bin statistic maps, D-AM-V, region means, AM-V distributions, profiles,
    single-image deviations and their uncertainty.

    ``bins`` is a :func:`bins_dataset`; ``maps`` must hold every image it puts in a
    bin, and the error names the first missing ones otherwise. The bootstrap and the
    permutation test draw from ``seed`` (independent streams per bin and for the test);
    ``n_boot = 0`` or ``n_perm = 0`` skips them (NaN results). The reference of the
    single-image deviation and the HIGH side of the permutation test is the first bin
    (``high``, or the best quantile bin ``qn``); the LOW side is the last bin (``low``,
    or ``q1``), so with quantile bins the test compares the extreme bins only.
    """
    n_boot = _check_count("n_boot", n_boot)
    n_perm = _check_count("n_perm", n_perm)
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
    size_y, size_x = maps.sizes["y"], maps.sizes["x"]
    inside = mask.values.astype(bool)
    weights = _region_weights(inside)
    sets = [
        maps.sel(image=binned["image"].values[binned.values == name]).values.astype(np.float64).reshape(-1, inside.size)
        for name in names
    ]
    stat_maps = np.stack([set_statistics(x.reshape(-1, size_y, size_x)) for x in sets])  # float64
    image_ids = pd.Index(labels["image"].values).append(
        pd.Index(np.setdiff1d(maps["image"].values, labels["image"].values))
    )
    ds = xr.Dataset(
        {
            "maps": (("bin", "stat", "y", "x"), stat_maps.astype(np.float32)),
            "face_mask": mask.astype(np.int8),
            "bin_of_image": labels.reindex(image=image_ids, fill_value=""),
        },
        coords={
            "bin": names,
            "stat": list(STATS),
            "y": maps["y"].values,
            "x": maps["x"].values,
            **{c: ("bin", bins[c].values) for c in ("bin_size", "score_min", "score_max")},
        },
        attrs={
            "seed": int(seed),
            "n_boot": n_boot,
            "n_perm": n_perm,
            "ci_level": CI_LEVEL,
            "reference_bin": names[0],
            "contrast_bins": f"{names[-1]} vs {names[0]}",
        },
    )
    ds["maps"].attrs = {
        "description": "per-bin mean (MAM), std ddof=1 (AM-V), lower median, std_mad",
        "units": _UNITLESS,
    }
    ds["face_mask"].attrs = {**mask.attrs, "description": "1 inside the central-face ellipse, 0 outside"}
    ds["bin_of_image"].attrs = {"description": "quality bin of the image; empty when in none"}
    ds["bin_size"].attrs = {"description": "images in the bin", "units": "count"}
    ds["score_min"].attrs = {"description": "lowest quality score in the bin (higher = better)"}
    ds["score_max"].attrs = {"description": "highest quality score in the bin (higher = better)"}
    ds["y"].attrs = {"description": "pixel row in the aligned face", "units": "pixel"}
    ds["x"].attrs = {"description": "pixel column in the aligned face", "units": "pixel"}
    ds["stat"].attrs = {"description": "pixel-wise statistic over the bin's maps"}
    ds["bin"].attrs = {"description": "quality bin, best first"}
    region = np.stack([ds["maps"].values[..., inside].mean(-1), ds["maps"].values[..., ~inside].mean(-1)], -1)
    ds["region_mean"] = (("bin", "stat", "region"), region)
    ds["region_mean"].attrs = {
        "description": "mean over the pixels inside / outside the face mask",
        "units": _UNITLESS,
    }
    ds = ds.assign_coords(region=list(REGIONS))
    ds["region"].attrs = {"description": "pixels inside / outside the face mask"}
    ds["outside_inside_ratio"] = ds["region_mean"].sel(region="outside") / ds["region_mean"].sel(region="inside")
    ds["outside_inside_ratio"].attrs = {
        "description": "region_mean outside / region_mean inside the face mask",
        "units": _UNITLESS,
    }
    if names == ["high", "low"]:
        amv = ds["maps"].sel(stat="amv").values
        d = np.abs(amv[0] - amv[1])
        ds["d_amv"] = (("y", "x"), d, {"description": "|AM-V(high) - AM-V(low)|", "units": _UNITLESS})
        ds["d_amv_normalised"] = (
            ("y", "x"),
            d / d.max() if d.max() > 0 else d,
            {"description": "D-AM-V / its max", "units": _UNITLESS},
        )
    _distributions(ds, stat_maps[:, STATS.index("amv")], inside)
    _deviations(ds, maps, stat_maps[0, STATS.index("mam")], inside, weights, names[0])
    _uncertainty(ds, sets, weights, seed, n_boot, n_perm)
    return ds


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
        np.array([_kde_mass(v, grid[0], grid[-1], b) for v, b in zip(flat, h, strict=True)]),
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


def _deviations(
    ds: xr.Dataset, maps: xr.DataArray, reference: np.ndarray, inside: np.ndarray, weights: np.ndarray, ref_bin: str
) -> None:
    """δ_i = |MAM(reference bin) − A_i| for every image with a map, and its region summaries.

    ``maps`` may be lazy (a file opened, not loaded): they are read ``_DEVIATION_CHUNK``
    images at a time, so beyond the output itself memory does not grow with the dataset.
    """
    n = maps.sizes["image"]
    dev = np.empty((n, inside.size), dtype=np.float32)
    region = np.empty((n, 2))  # (image, 2): inside, outside means
    ref = reference.ravel().astype(np.float32)
    for start in range(0, n, _DEVIATION_CHUNK):
        part = slice(start, start + _DEVIATION_CHUNK)
        flat = maps.isel(image=part).values.reshape(-1, inside.size).astype(np.float32, copy=False)
        np.abs(ref - flat, out=dev[part])
        region[part] = dev[part].astype(np.float64) @ weights
    total = region[:, 0] * inside.sum() + region[:, 1] * (~inside).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, region[:, 1] * (~inside).sum() / total, np.nan)
    coords = {"image": maps["image"].values}
    ref = f"MAM of bin {ref_bin!r}"
    deviation = xr.DataArray(dev.reshape(maps.shape), coords=coords, dims=("image", "y", "x"))
    ds["deviation"] = deviation.reindex(image=ds["image"].values)
    ds["deviation"].attrs = {
        "description": f"single-image deviation |{ref} - A_i| per pixel; NaN for images without a map. "
        "The paper shows it normalised by each image's max.",
        "reference_bin": ref_bin,
        "units": _UNITLESS,
    }
    for name, values, desc, units in (
        ("deviation_inside", region[:, 0], "mean deviation over the pixels inside the face mask", _UNITLESS),
        ("deviation_outside", region[:, 1], "mean deviation over the pixels outside the face mask", _UNITLESS),
        ("deviation_outside_share", share, "share of the image's summed deviation outside the face mask", _UNITLESS),
    ):
        ds[name] = xr.DataArray(values, coords=coords, dims="image").reindex(image=ds["image"].values)
        ds[name].attrs = {"description": f"{desc} (reference: {ref}); NaN for images without a map", "units": units}


def _uncertainty(
    ds: xr.Dataset, sets: list[np.ndarray], weights: np.ndarray, seed: int, n_boot: int, n_perm: int
) -> None:
    """Bootstrap intervals of the MAM / AM-V region means and the HIGH/LOW permutation test."""
    streams = np.random.SeedSequence(seed).spawn(len(sets) + 1)
    ci = np.full((len(sets), len(STATS), len(REGIONS), 2), np.nan)
    ratio_ci = np.full((len(sets), len(STATS), 2), np.nan)
    alpha = (1 - CI_LEVEL) / 2
    if n_boot > 0:
        for b, (x, stream) in enumerate(zip(sets, streams, strict=False)):
            mam, amv = bootstrap_region_means(x, weights, n_boot, stream)
            for stat, rep in (("mam", mam), ("amv", amv)):
                ci[b, STATS.index(stat)] = np.quantile(rep, [alpha, 1 - alpha], axis=0).T
                with np.errstate(divide="ignore", invalid="ignore"):  # a resample with no inside variation
                    ratio_ci[b, STATS.index(stat)] = np.nanquantile(rep[:, 1] / rep[:, 0], [alpha, 1 - alpha])
    ds.coords["bound"] = ("bound", ["lower", "upper"], {"description": "interval bounds"})
    ds["region_mean_ci"] = (("bin", "stat", "region", "bound"), ci)
    ds["region_mean_ci"].attrs = {
        "description": (
            f"bootstrap {CI_LEVEL:.0%} percentile interval of region_mean: images resampled with replacement "
            "within the bin, statistic maps recomputed; only mam and amv (NaN for the other statistics). "
            "Each resample's AM-V variance is scaled by N/(N-1) (N = bin size) to undo the duplicates' "
            "downward bias; the interval does not correct the std's own small-sample bias."
        ),
        "n_boot": n_boot,
        "seed": int(seed),
        "replicate_variance_scale": "N/(N-1)",
        "units": _UNITLESS,
    }
    ds["outside_inside_ratio_ci"] = (("bin", "stat", "bound"), ratio_ci)
    ds["outside_inside_ratio_ci"].attrs = {
        "description": (
            f"bootstrap {CI_LEVEL:.0%} percentile interval of outside_inside_ratio from the same resamples as "
            "region_mean_ci (the ratio of each resample's outside and inside means); only mam and amv"
        ),
        "n_boot": n_boot,
        "seed": int(seed),
        "units": _UNITLESS,
    }
    res = (
        permutation_test(sets[0], sets[-1], weights, n_perm, streams[-1])
        if n_perm > 0
        else dict.fromkeys(("perm_statistic", "perm_p_value", "perm_ratio_statistic", "perm_ratio_p_value"), np.nan)
    )
    contrast = f"{ds.attrs['contrast_bins']}"
    descriptions = {
        "perm_statistic": f"T = outside-mask mean AM-V of the last bin minus that of the first ({contrast})",
        "perm_p_value": "one-sided permutation p-value of T: (1 + #{T_perm >= T}) / (1 + n_perm)",
        "perm_ratio_statistic": f"outside/inside AM-V ratio of the last bin minus that of the first ({contrast})",
        "perm_ratio_p_value": "one-sided permutation p-value of the ratio difference, as perm_p_value",
    }
    for name, desc in descriptions.items():
        ds[name] = ((), res[name], {"description": desc, "n_perm": n_perm, "seed": int(seed), "units": _UNITLESS})


def bins_dataset(quality: xr.Dataset, mode: str = "high_low", k: float | int = 0.2, n: int = 4) -> xr.Dataset:
    """The bin of every image with the bins' sizes and score ranges."""
    labels = assign_bins(quality["quality"], mode, k, n)
    names = bin_names(labels)
    q = quality["quality"]
    ds = xr.Dataset(
        {"bin": labels, "quality": q},
        coords={
            "bin_name": names,
            "bin_size": ("bin_name", [int((labels == b).sum()) for b in names]),
            "score_min": ("bin_name", [float(q.where(labels == b).min()) for b in names]),
            "score_max": ("bin_name", [float(q.where(labels == b).max()) for b in names]),
        },
        attrs={"mode": mode, "k": k, "n": n},
    )
    ds["bin"].attrs = {"description": "quality bin of the image; empty when in none"}
    return ds


def binned_images(bins: list[xr.Dataset]) -> list[str]:
    """Sorted ids of the images that any of these bin assignments puts in a bin."""
    wanted: set[str] = set()
    for ds in bins:
        labels = ds["bin"]
        wanted.update(labels["image"].values[labels.values != ""].tolist())
    return sorted(wanted)

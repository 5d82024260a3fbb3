"""Quality bins and the AMVA statistics (Fu & Damer, WACVW 2022).

Activation maps are an ``xarray.DataArray`` with dims ``(image, y, x)`` and values in
[0, 1]. Quality is a DataArray over ``image`` oriented "higher = better".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from amva.datasets.align import ARCFACE_TEMPLATE

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


def face_mask(size: int = 112, margin: float = 0.5) -> xr.DataArray:
    """Central-face ellipse in the ArcFace alignment frame.

    The ellipse's centre is the template's centroid of eyes and mouth; its semi-axes are
    half the eye-to-eye and eye-to-mouth spans of the template, grown by ``margin``
    (a fraction). Scaled to ``size`` if maps are not 112 px.
    """
    pts = ARCFACE_TEMPLATE * (size / 112.0)
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
        attrs={"description": "True inside the central-face ellipse", "margin": margin},
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


def amva(maps: xr.DataArray, bins: xr.Dataset, mask: xr.DataArray) -> xr.Dataset:
    """Per-bin statistic maps, D-AM-V and inside/outside region means.

    ``bins`` is a :func:`bins_dataset`; ``maps`` must hold every image it puts in a
    bin, and the error names the first missing ones otherwise.
    """
    labels = bins["bin"]
    binned = labels[labels != ""]
    missing = np.setdiff1d(binned["image"].values, maps["image"].values)
    if missing.size:
        raise ValueError(
            f"{missing.size} binned images have no activation map (e.g. {', '.join(missing[:3])}); "
            "re-run the CAM step for this FIQA's bins"
        )
    names = bins["bin_name"].values.tolist()
    stat_maps = [
        set_statistics(maps.sel(image=binned["image"].values[binned.values == name]).values.astype(np.float64))
        for name in names
    ]
    ds = xr.Dataset(
        {
            "maps": (("bin", "stat", "y", "x"), np.stack(stat_maps).astype(np.float32)),
            "face_mask": mask.astype(np.int8),
            "bin_of_image": labels,
        },
        coords={
            "bin": names,
            "stat": list(STATS),
            "y": maps["y"].values,
            "x": maps["x"].values,
            **{c: ("bin", bins[c].values) for c in ("bin_size", "score_min", "score_max")},
        },
    )
    ds["maps"].attrs = {"description": "per-bin mean (MAM), std ddof=1 (AM-V), lower median, std_mad"}
    inside = mask.values.astype(bool)
    region = np.stack([ds["maps"].values[..., inside].mean(-1), ds["maps"].values[..., ~inside].mean(-1)], -1)
    ds["region_mean"] = (("bin", "stat", "region"), region)
    ds["region_mean"].attrs = {"description": "mean over the pixels inside / outside the face mask"}
    ds = ds.assign_coords(region=list(REGIONS))
    ds["outside_inside_ratio"] = ds["region_mean"].sel(region="outside") / ds["region_mean"].sel(region="inside")
    if names == ["high", "low"]:
        amv = ds["maps"].sel(stat="amv").values
        d = np.abs(amv[0] - amv[1])
        ds["d_amv"] = (("y", "x"), d, {"description": "|AM-V(high) - AM-V(low)|"})
        ds["d_amv_normalised"] = (("y", "x"), d / d.max() if d.max() > 0 else d, {"description": "D-AM-V / its max"})
    return ds


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

"""Quality bins: which images a FIQA method calls best and worst, and who is in them.

AM-V measures how much the maps of a set differ, so it also grows with how many
different faces the set holds: near-copies of one photo vary little whatever their
quality. Every bin therefore records its make-up over a grouping label (identity,
source photo, any label, or none), and ``matched`` bins take the same share of every
group for HIGH and LOW, so the two sets hold the same groups in the same proportions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

MODES = ("high_low", "quantiles", "matched")
NO_GROUPS = "none"  # every image is its own group


def quality_order(quality: xr.DataArray) -> np.ndarray:
    """Image positions from best to worst; ties broken by image id for determinism."""
    ids = quality["image"].values.astype(str)
    return np.lexsort((ids, -quality.values.astype(np.float64)))


def _bin_count(k: float | int, n: int) -> int:
    """``k`` is a count (int >= 1) or a fraction of the images (0 < k < 1)."""
    if isinstance(k, float) and 0 < k < 1:
        count = round(k * n)
    elif float(k).is_integer() and k >= 1:
        count = int(k)
    else:
        raise ValueError(f"k = {k!r}: give a count >= 1 or a fraction in (0, 1)")
    if count < 2 or 2 * count > n:
        raise ValueError(
            f"k = {k!r} gives {count} images per set from {n} scored images; "
            "each of HIGH and LOW needs at least 2 images and they must not overlap"
        )
    return count


def group_share(k: float | int, n_group: int) -> int:
    """Images per set that a group of ``n_group`` gives to matched bins (0: the group is left out).

    A fraction takes ⌈k·n⌉ (so every group of two or more gives at least one), a count
    takes ``k``; either is capped at ⌊n/2⌋ so that HIGH and LOW never share an image.
    """
    if isinstance(k, float) and 0 < k <= 0.5:
        wanted = math.ceil(k * n_group - 1e-9)
    elif float(k).is_integer() and k >= 1:
        wanted = int(k)
    else:
        raise ValueError(f"k = {k!r}: matched bins take a share in (0, 0.5] or a count >= 1 of every group")
    return min(wanted, n_group // 2)


def group_labels(faces: xr.Dataset, by: str) -> xr.DataArray:
    """The group of every image: a label coordinate of ``faces`` by name, or the image itself (``none``)."""
    ids = faces["image"]
    if by == NO_GROUPS:
        values = ids.values.astype(str)
    elif by in faces.coords and faces[by].dims == ("image",):
        values = faces[by].values.astype(str)
    else:
        labels = sorted(n for n, c in faces.coords.items() if c.dims == ("image",) and n != "image")
        raise ValueError(f"group {by!r} is not a label of these faces; use one of {[*labels, NO_GROUPS]}")
    return xr.DataArray(values, coords={"image": ids.values}, dims="image", name="group")


def assign_bins(
    quality: xr.DataArray,
    mode: str = "high_low",
    k: float | int = 0.2,
    n: int = 4,
    groups: xr.DataArray | None = None,
) -> xr.DataArray:
    """Bin label per image ("" for images in no bin).

    ``high_low``: the paper's two equal-size sets, the top and bottom ``k`` of the
    ranking. ``quantiles``: ``n`` equal-count bins ``q1`` (worst) … ``qn`` (best).
    ``matched``: within every group, the top and bottom :func:`group_share` of that
    group's ranking, so HIGH and LOW hold each group in equal numbers. Images without a
    finite score are in no bin.
    """
    valid = quality.where(np.isfinite(quality), drop=True)
    labels = np.full(valid.sizes["image"], "", dtype=object)
    if mode == "high_low":
        order = quality_order(valid)
        count = _bin_count(k, len(order))
        labels[order[:count]] = "high"
        labels[order[-count:]] = "low"
    elif mode == "quantiles":
        order = quality_order(valid)
        if not 2 <= n <= len(order):
            raise ValueError(f"n = {n}: need 2 <= n <= {len(order)} (the scored images)")
        for rank, chunk in enumerate(np.array_split(order[::-1], n), start=1):
            labels[chunk] = f"q{rank}"
    elif mode == "matched":
        if groups is None:
            raise ValueError("matched bins need a group per image")
        member = groups.sel(image=valid["image"]).values
        for g in np.unique(member):
            where = np.flatnonzero(member == g)
            share = group_share(k, where.size)
            if share:
                order = where[quality_order(valid.isel(image=where))]
                labels[order[:share]] = "high"
                labels[order[-share:]] = "low"
        if not (labels == "high").any():
            raise ValueError(f"matched bins with k = {k!r}: no group has two scored images, so no bin has any")
    else:
        raise ValueError(f"mode = {mode!r}: use one of {', '.join(MODES)}")
    out = xr.DataArray(labels.astype(str), coords={"image": valid["image"]}, dims="image", name="bin")
    return out.reindex(image=quality["image"], fill_value="")


def bin_names(bins: xr.DataArray) -> list[str]:
    """Bins in report order: high before low, quantiles best first."""
    names = sorted({b for b in bins.values.tolist() if b})
    if set(names) == {"high", "low"}:
        return ["high", "low"]
    return sorted(names, key=lambda b: -int(b[1:]))


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """TVD = ½ Σ_g |p_a(g) − p_b(g)| of the group shares of two sets of group labels."""
    groups = np.union1d(a, b)
    p = [np.array([np.mean(s == g) for g in groups]) for s in (a, b)]
    return float(0.5 * np.abs(p[0] - p[1]).sum())


def _largest(members: np.ndarray) -> tuple[str, float]:
    names, counts = np.unique(members, return_counts=True)
    top = int(np.argmax(counts))  # np.unique sorts names: ties go to the first name
    return str(names[top]), float(counts[top] / members.size)


def bins_dataset(
    quality: xr.Dataset,
    mode: str = "high_low",
    k: float | int = 0.2,
    n: int = 4,
    groups: xr.DataArray | None = None,
    group_by: str = NO_GROUPS,
) -> xr.Dataset:
    """The bin and group of every image, with each bin's size, score range and make-up.

    Make-up per bin: the number of distinct groups, the largest group and its share;
    for the whole split, the total-variation distance between the group shares of the
    first (best) and last (worst) bin. ``groups`` defaults to one group per image.
    """
    q = quality["quality"]
    if groups is None:
        groups = xr.DataArray(q["image"].values.astype(str), coords={"image": q["image"].values}, dims="image")
    groups = groups.sel(image=q["image"].values).rename("group")
    labels = assign_bins(q, mode, k, n, groups)
    names = bin_names(labels)
    members = {b: groups.values[labels.values == b] for b in names}
    largest = [_largest(members[b]) for b in names]
    ds = xr.Dataset(
        {"bin": labels, "quality": q, "group": groups},
        coords={
            "bin_name": names,
            "bin_size": ("bin_name", [int((labels == b).sum()) for b in names]),
            "score_min": ("bin_name", [float(q.where(labels == b).min()) for b in names]),
            "score_max": ("bin_name", [float(q.where(labels == b).max()) for b in names]),
            "bin_groups": ("bin_name", [np.unique(members[b]).size for b in names]),
            "largest_group": ("bin_name", [name for name, _ in largest]),
            "largest_group_share": ("bin_name", [share for _, share in largest]),
            "bin_ties": ("bin_name", tied_images(q, labels, groups, names, within_groups=mode == "matched")),
        },
        attrs={"mode": mode, "k": k, "n": n, "group_by": group_by},
    )
    # with one image per group, HIGH and LOW can share no group: a TVD of 1 would say nothing
    singletons = np.unique(groups.values).size == groups.size
    tvd = np.nan if singletons else total_variation(members[names[0]], members[names[-1]])
    ds["makeup_tvd"] = ((), tvd)
    scored = groups.values[np.isfinite(q.values)]
    in_bins = np.unique(groups.values[labels.values != ""])
    left_out = np.setdiff1d(np.unique(scored), in_bins)
    ds.attrs.update(groups=int(np.unique(scored).size), groups_left_out=int(left_out.size))
    ds.attrs["images_left_out_with_their_group"] = int(np.isin(scored, left_out).sum())
    _describe(ds)
    return ds


def tied_images(
    quality: xr.DataArray, labels: xr.DataArray, groups: xr.DataArray, names: list[str], within_groups: bool
) -> list[int]:
    """Per bin, its images whose score an image outside the bin shares (within the same group for
    matched bins): which side of the bin's edge they fell on was decided by the image id, not by
    quality. A FIQA method that gives every image the same score ties every binned image."""
    df = pd.DataFrame({"score": quality.values, "bin": labels.values, "group": groups.values.astype(str)})
    df = df[np.isfinite(df["score"])]
    keys = ["group", "score"] if within_groups else ["score"]
    out = []
    for name in names:
        inside, outside = df[df["bin"] == name], df[df["bin"] != name][keys].drop_duplicates()
        out.append(int(inside.merge(outside, on=keys, how="inner").shape[0]))
    return out


def _describe(ds: xr.Dataset) -> None:
    first, last = ds["bin_name"].values[0], ds["bin_name"].values[-1]
    ds["bin"].attrs = {"description": "quality bin of the image; empty when in none"}
    ds["group"].attrs = {"description": f"group of the image ({ds.attrs['group_by']}; 'none': the image itself)"}
    ds["bin_size"].attrs = {"description": "images in the bin", "units": "count"}
    ds["score_min"].attrs = {"description": "lowest quality score in the bin (higher = better)"}
    ds["score_max"].attrs = {"description": "highest quality score in the bin (higher = better)"}
    ds["bin_groups"].attrs = {"description": "distinct groups among the bin's images", "units": "count"}
    ds["bin_ties"].attrs = {
        "description": "images of the bin whose score an image outside it shares (within their group for matched "
        "bins): their side of the bin's edge was decided by image id, not by quality",
        "units": "count",
    }
    ds["largest_group"].attrs = {"description": "the group with the most images in the bin (first name on ties)"}
    ds["largest_group_share"].attrs = {"description": "share of the bin's images in its largest group", "units": "1"}
    ds["makeup_tvd"].attrs = {
        "description": f"total-variation distance between the group shares of bins {first!r} and {last!r}: "
        "0 when both hold the groups in the same proportions, 1 when they share none; NaN when every image "
        "is its own group (the bins cannot share a group, so the distance says nothing)",
        "units": "1",
    }


def binned_images(bins: list[xr.Dataset]) -> list[str]:
    """Sorted ids of the images that any of these bin assignments puts in a bin."""
    wanted: set[str] = set()
    for ds in bins:
        labels = ds["bin"]
        wanted.update(labels["image"].values[labels.values != ""].tolist())
    return sorted(wanted)

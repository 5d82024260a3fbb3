"""Can the maps be trusted? One CAM's sanity check, null-model maps and faithfulness as a labelled dataset.

:mod:`amva.cam.randomise` makes the cascade, :mod:`amva.cam.similarity` compares maps and
:mod:`amva.cam.faithfulness` makes the deletion/insertion curves; this module only labels what
they return and summarises it: medians with 95% cluster-bootstrap intervals over the images'
groups (identity or source photo), so that a person with many images counts once per draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from amva.cam.faithfulness import Perturbation
from amva.cam.randomise import ALL, Step
from amva.cam.similarity import spearman, ssim
from amva.io import UNIT_RANGE
from amva.resampling import bootstrap_medians

TRAINED = "trained"
SANITY_LIMIT = 0.5
"""A CAM whose maps under the fully randomised model keep a median Spearman rho >= this with the
trained model's maps fails the sanity check: its maps describe the image more than the model."""
EXAMPLES = 3  # images whose maps the report shows at every cascade step
RANKED, CONSTANT, NOT_COMPUTED = 0, 1, -1
CI_BOUNDS = (0.025, 0.975)


def sample(ids: Sequence[str], cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` of ``ids`` (None: all), drawn without replacement from ``seed``, in id order."""
    ids = np.asarray(sorted(ids))
    if cap is None or cap >= ids.size:
        return ids
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    return np.sort(rng.choice(ids, size=cap, replace=False))


def grouped_median(
    values: np.ndarray, groups: np.ndarray, n_boot: int, min_groups: int, seed: int
) -> tuple[float, float, float, int, int]:
    """Median of the finite ``values``, its 95% cluster-bootstrap interval (NaN below ``min_groups``
    groups), the count of finite values and of their groups."""
    finite = np.isfinite(values)
    n, g = int(finite.sum()), int(np.unique(groups[finite]).size)
    if n == 0:
        return np.nan, np.nan, np.nan, 0, 0
    lower = upper = np.nan
    if n_boot > 0 and g >= min_groups:
        reps = bootstrap_medians([values[finite]], [groups[finite]], n_boot, np.random.SeedSequence([seed, 3]))[:, 0]
        lower, upper = np.nanquantile(reps, CI_BOUNDS)
    return float(np.median(values[finite])), float(lower), float(upper), n, g


def trust_dataset(
    ids: np.ndarray,
    groups: np.ndarray,
    trained: np.ndarray,
    steps: list[Step],
    randomised_maps: Sequence[tuple[np.ndarray, np.ndarray]],
    faithfulness: tuple[np.ndarray, dict[str, np.ndarray]] | None,
    how: Perturbation,
    n_boot: int,
    min_groups: int,
    seed: int,
) -> xr.Dataset:
    """Per image and cascade step: Spearman rho and SSIM with the trained map; the null model's maps
    (step ``all``); per image the faithfulness curves and AUCs; and their grouped medians.

    ``trained`` holds the trained model's maps of ``ids`` ``(n, H, W)``; ``randomised_maps`` one
    ``(images, maps)`` pair per step of ``steps`` (images a subset of ``ids``); ``faithfulness`` the
    images and :func:`amva.cam.faithfulness.curves` result, or None.
    """
    index = {image: i for i, image in enumerate(ids)}
    n, (height, width) = ids.size, trained.shape[1:]
    rho = np.full((len(steps), n), np.nan)
    sim = np.full((len(steps), n), np.nan)
    state = np.full((len(steps), n), NOT_COMPUTED, dtype=np.int8)
    null = np.full((n, height, width), np.nan, dtype=np.float32)
    examples = np.sort(np.asarray(randomised_maps[0][0])[:EXAMPLES]) if randomised_maps else ids[:0]
    example_maps = np.full((len(examples), len(steps) + 1, height, width), np.nan, dtype=np.float32)
    example_maps[:, 0] = trained[[index[e] for e in examples]]
    for s, (step, (images, maps)) in enumerate(zip(steps, randomised_maps, strict=True)):
        at = np.array([index[i] for i in images], dtype=np.int64)
        rho[s, at] = spearman(trained[at], maps)
        sim[s, at] = ssim(trained[at], maps)
        constant = (maps.reshape(len(at), -1).max(1) == maps.reshape(len(at), -1).min(1)) | (
            trained[at].reshape(len(at), -1).max(1) == trained[at].reshape(len(at), -1).min(1)
        )
        state[s, at] = np.where(constant, CONSTANT, RANKED)
        if step.name == ALL:
            null[at] = maps
        where = {image: k for k, image in enumerate(images)}
        for e, image in enumerate(examples):
            if image in where:
                example_maps[e, s + 1] = maps[where[image]]
    names = [s.name for s in steps]
    ds = xr.Dataset(
        {
            "spearman": (("step", "image"), rho, _ATTRS["spearman"]),
            "ssim": (("step", "image"), sim, _ATTRS["ssim"]),
            "map_state": (("step", "image"), state, _ATTRS["map_state"]),
            "example_maps": (("example", "map_step", "y", "x"), example_maps, _ATTRS["example_maps"]),
            "group": ("image", groups.astype(str), {"description": "the image's group: the unit of the bootstrap"}),
        },
        coords={
            "image": ids,
            "step": ("step", names, {"description": "cascade step: its block and every block above it randomised"}),
            "step_blocks": ("step", [", ".join(s.blocks) for s in steps], {"description": "the randomised blocks"}),
            "example": ("example", examples),
            "map_step": ("map_step", [TRAINED, *names]),
            "y": np.arange(height),
            "x": np.arange(width),
        },
        attrs={"sanity_limit": SANITY_LIMIT, "n_boot": n_boot, "min_groups": min_groups, "seed": seed},
    )
    if ALL in names and np.isfinite(null).all():  # every image: the null arm needs them all
        ds["null_maps"] = (("image", "y", "x"), null, _ATTRS["null_maps"])
    summaries = {f"{v}_median": (("step",), ds[v].values) for v in ("spearman", "ssim")}
    if faithfulness is not None:
        _faithfulness(ds, index, *faithfulness, how)
        for v in ("deletion_faithfulness", "insertion_faithfulness"):
            summaries[f"{v}_median"] = ((), ds[v].values[None])
    for name, (dims, values) in summaries.items():
        rows = [grouped_median(v, ds["group"].values, n_boot, min_groups, seed) for v in values]
        est, lo, hi, count, grp = (np.array(c) for c in zip(*rows, strict=True))
        squeeze = (lambda a: a[0]) if not dims else (lambda a: a)
        ds[name] = (dims, squeeze(est), {"description": f"median over the images with a value; {_CI}"})
        ds[f"{name}_ci"] = ((*dims, "bound"), squeeze(np.stack([lo, hi], -1)), {"description": _CI})
        ds[f"{name}_count"] = (dims, squeeze(count), {"description": "images with a value", "units": "count"})
        ds[f"{name}_groups"] = (dims, squeeze(grp), {"description": "their groups", "units": "count"})
    ds.coords["bound"] = ("bound", ["lower", "upper"])
    return ds


def _faithfulness(
    ds: xr.Dataset, index: dict[str, int], images: np.ndarray, res: dict[str, np.ndarray], how: Perturbation
) -> None:
    at = np.array([index[i] for i in images], dtype=np.int64)
    n = ds.sizes["image"]
    ds.coords["fraction"] = ("fraction", how.grid, {"description": "share of the map's cells removed or revealed"})
    ds.attrs.update(baseline=how.baseline, blur_sigma=how.blur_sigma, unit=how.unit, random_orders=how.random_orders)
    for name, value in res.items():
        if name.endswith("_draws"):
            continue
        full = np.full((n, *value.shape[1:]), np.nan)
        full[at] = value
        dims = ("image", "fraction") if value.ndim == 2 else ("image",)
        ds[name] = (dims, full.astype(np.float64), _ATTRS.get(name, {"description": _CURVE}))


_CI = "95% percentile interval of the median, cluster bootstrap over the images' groups (NaN below min_groups groups)"
_CURVE = "cosine between the perturbed image's embedding and the clean image's, per step of fraction"
_ATTRS: dict[str, dict[str, object]] = {
    "spearman": {"description": "Spearman rho between the trained model's map and this step's map of the image"},
    "ssim": {"description": "SSIM (7x7 uniform window, data range 1, as scikit-image) of the two maps"},
    "map_state": {
        "description": "whether the comparison ranked the maps",
        "flag_values": [RANKED, CONSTANT, NOT_COMPUTED],
        "flag_meanings": "ranked constant_map_rank_order_undefined not_computed",
    },
    "example_maps": {"description": "the trained map and each step's map of a few images", "range": UNIT_RANGE},
    "null_maps": {"description": "maps of the fully randomised model (the null model)", "range": UNIT_RANGE},
    "constant_map": {"description": "1 where the map is constant: its order is the first random draw's"},
    "deletion_auc": {"description": "area under the map's deletion curve (trapezoid over fraction)"},
    "insertion_auc": {"description": "area under the map's insertion curve"},
    "deletion_faithfulness": {"description": "mean random-order deletion AUC minus the map's: > 0 beats chance"},
    "insertion_faithfulness": {"description": "the map's insertion AUC minus the mean random-order one"},
}

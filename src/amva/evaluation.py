"""Error versus discard: what a FIQA ranking does for face recognition.

EDC (ISO/IEC 29794-1; Schlett et al.): the decision threshold is fixed once on all
pairs, pairs are discarded in ascending pair quality (``min`` of the two images'
qualities, ties discarded together) and the error is the FNMR of the genuine pairs
that remain. pAUC is the stepwise integral of that curve up to a discard limit.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def comparison_scores(embeddings: xr.DataArray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of the embeddings of images ``a[i]`` and ``b[i]``."""
    emb = embeddings.values.astype(np.float64)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    index = {name: i for i, name in enumerate(embeddings["image"].values.tolist())}
    ia = np.array([index[x] for x in a])
    ib = np.array([index[x] for x in b])
    return np.einsum("ij,ij->i", emb[ia], emb[ib])


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Smallest threshold whose FMR (impostor scores >= threshold) is at most ``fmr``.

    Raises when ``fmr`` is below what the number of impostor pairs can resolve.
    """
    n = impostor.size
    if n == 0 or fmr * n < 1:
        raise ValueError(
            f"FMR {fmr:g} is not resolvable with {n} impostor pairs (needs >= {int(np.ceil(1 / fmr))}); "
            "use a larger FMR or a starting FNMR (evaluation.threshold: {fnmr: ...})"
        )
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(fmr * n))  # number of impostors that may score >= threshold
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < n else float(ordered[-1])


def threshold_at_fnmr(genuine: np.ndarray, fnmr: float) -> float:
    """Threshold at which a fraction ``fnmr`` of genuine scores falls below it."""
    if genuine.size == 0:
        raise ValueError("no genuine pairs: a starting FNMR needs genuine comparisons")
    return float(np.quantile(genuine, fnmr, method="lower"))


def edc_fnmr(
    scores: np.ndarray,
    genuine: np.ndarray,
    pair_quality: np.ndarray,
    threshold: float,
    pauc_limits: tuple[float, ...] = (0.2, 0.3),
) -> xr.Dataset:
    """EDC of the FNMR over the genuine pairs, discarding in ascending pair quality.

    Returns one point per distinct pair-quality level (ties leave together), starting
    at zero discard, where the FNMR equals the plain FNMR at ``threshold``.
    """
    gen_scores = scores[genuine]
    gen_quality = pair_quality[genuine]
    n = gen_scores.size
    if n == 0:
        raise ValueError("no genuine pairs to compute an FNMR on")
    order = np.argsort(gen_quality, kind="stable")
    q = gen_quality[order]
    miss = (gen_scores[order] < threshold).astype(np.int64)
    # after discarding the first j pairs, the remaining misses are the suffix sum
    remaining_miss = np.concatenate([np.cumsum(miss[::-1])[::-1], [0]])
    # legal cut points: 0, and every j where q changes (ties discarded together)
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(q) != 0) + 1])
    kept = n - cuts
    fnmr = remaining_miss[cuts] / kept
    discard = cuts / n
    ds = xr.Dataset(
        {"fnmr": ("discard", fnmr), "kept_pairs": ("discard", kept)},
        coords={"discard": discard, "quality_cut": ("discard", q[cuts])},
        attrs={"protocol": "EDC", "threshold": float(threshold), "genuine_pairs": int(n)},
    )
    ds["fnmr"].attrs = {"description": "FNMR of the remaining genuine pairs at the fixed threshold"}
    ds["discard"].attrs = {"description": "fraction of genuine pairs discarded"}
    for limit in pauc_limits:
        ds.attrs[f"pauc_{limit:g}"] = pauc(discard, fnmr, limit)
    return ds


def pauc(discard: np.ndarray, error: np.ndarray, limit: float) -> float:
    """Stepwise area under the EDC from zero discard up to ``limit``.

    Each error value holds from its discard fraction to the next point's.
    """
    right = np.minimum(np.append(discard[1:], 1.0), limit)
    widths = np.clip(right - discard, 0, None)
    return float(np.sum(error * widths))


def edc_dataset(
    pairs: xr.Dataset,
    embeddings: xr.Dataset,
    quality: xr.Dataset,
    threshold: dict[str, float],
    pauc_limits: tuple[float, ...] = (0.2, 0.3),
) -> xr.Dataset:
    """EDC of one (dataset, model, FIQA): pair scores, pair quality = min, fixed threshold.

    ``threshold`` is ``{"fmr": x}`` (from the impostor scores) or ``{"fnmr": e0}`` (the
    starting FNMR); the choice is recorded in the attributes.
    """
    a, b = pairs["a"].values, pairs["b"].values
    genuine = pairs["genuine"].values.astype(bool)
    scores = comparison_scores(embeddings["embedding"], a, b)
    q = quality["quality"]
    pair_quality = np.minimum(q.sel(image=a).values, q.sel(image=b).values)
    if set(threshold) == {"fmr"}:
        tau = threshold_at_fmr(scores[~genuine], float(threshold["fmr"]))
    elif set(threshold) == {"fnmr"}:
        tau = threshold_at_fnmr(scores[genuine], float(threshold["fnmr"]))
    else:
        raise ValueError(f"evaluation.threshold = {threshold!r}: give exactly one of fmr or fnmr")
    ds = edc_fnmr(scores, genuine, pair_quality, tau, pauc_limits)
    ds.attrs.update(
        threshold_from=next(iter(threshold)),
        threshold_target=float(next(iter(threshold.values()))),
        impostor_pairs=int((~genuine).sum()),
        pair_quality="min",
    )
    return ds

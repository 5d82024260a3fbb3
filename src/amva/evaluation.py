"""Error versus discard: what a FIQA ranking does for face recognition.

Two published protocols, each written here from its public reference implementation
(facts taken over, code not):

EDC
    Error versus Discard Characteristic (ISO/IEC 29794-1; Schlett et al.). Reference:
    ``dasec/quality-assessment-evaluation``, ``edc.py`` (``compute_edc``,
    ``_compute_edc``, ``compute_edc_pauc``, ``compute_edc_area_under_theoretical_best``)
    as used by its ``example.py``. The FNMR curve is computed over the genuine (mated)
    pairs only, with one decision threshold fixed once; pairs leave in ascending pair
    quality, tied qualities together; pAUC is the stepwise integral up to a discard
    limit, optionally minus the area under the theoretical best curve.
ERC
    Error versus Reject Characteristic as evaluated by CR-FIQA (Boutros et al.).
    Reference: ``fdbtrs/CR-FIQA``, ``ERC/erc.py`` (``distance_``, ``calc_score``,
    ``getFNMRFixedTH``, ``save_pdf``) and ``ERC/roc.py`` (``calculate_roc``,
    ``get_fmr_op``, ``get_eer_threshold``). A fixed grid of discard fractions over ALL
    pairs (genuine and impostor); at every step the threshold is re-computed on the
    pairs that are kept, at each target FMR; AUC by the trapezoid rule.

Pair quality is ``min`` of the two images' qualities in both protocols (``edc.py``'s
default ``pair_quality_score_function=min``; ``erc.py``'s ``load_quality_pair``). A
NaN pair quality (a FIQA that could not score an image, e.g. BRISQUE on a flat image)
is ranked lowest here, so such pairs are discarded first, all together; neither
reference defines this (numpy's sort would put NaN last, i.e. keep them longest).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

REF_EDC = "dasec/quality-assessment-evaluation edc.py"
REF_ERC = "fdbtrs/CR-FIQA ERC/erc.py + ERC/roc.py"
_RESOLVE_TOL = 1e-9  # kept impostors × FMR >= 1 up to float rounding (e.g. 1000 × 1e-3)


PAIR_CHUNK = 65_536  # pairs per step: two (chunk, D) float64 blocks, 64 MB at D = 512


def comparison_scores(embeddings: xr.DataArray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of the embeddings of images ``a[i]`` and ``b[i]``.

    Computed in chunks of pairs: gathering both sides of 10^6 pairs at once would hold two
    (10^6, D) arrays, 2 GB at D = 128. Each pair's value does not depend on the chunking.
    """
    emb = embeddings.values.astype(np.float64)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    index = embeddings.indexes["image"]
    ia, ib = index.get_indexer(a), index.get_indexer(b)
    if (ia < 0).any() or (ib < 0).any():
        missing = np.concatenate([np.asarray(a)[ia < 0], np.asarray(b)[ib < 0]])
        raise KeyError(f"{missing.size} pair images have no embedding, e.g. '{missing[0]}'")
    out = np.empty(ia.size)
    for start in range(0, ia.size, PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        out[part] = np.einsum("ij,ij->i", emb[ia[part]], emb[ib[part]])
    return out


# ---------------------------------------------------------------------------- helpers


def _pairs(similarity, genuine, quality_a, quality_b) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validated 1-D arrays: similarity, genuine mask, pair-quality sort key, NaN-quality count.

    The key is ``min(quality_a, quality_b)`` with NaN replaced by -inf (ranked lowest).
    """
    s = np.asarray(similarity, dtype=np.float64)
    g = np.asarray(genuine).astype(bool)
    qa = np.asarray(quality_a, dtype=np.float64)
    qb = np.asarray(quality_b, dtype=np.float64)
    if s.ndim != 1 or not (s.shape == g.shape == qa.shape == qb.shape):
        raise ValueError(
            f"similarity, genuine, quality_a, quality_b must be 1-D of one length, got "
            f"{s.shape}, {g.shape}, {qa.shape}, {qb.shape}"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{int(np.sum(~np.isfinite(s)))} similarity scores are not finite")
    q = np.minimum(qa, qb)  # NaN propagates
    nan = np.isnan(q)
    return s, g, np.where(nan, -np.inf, q), int(nan.sum())


def _resolvable(n_impostor: int, fmr: float) -> bool:
    """Whether ``n_impostor`` impostor pairs can resolve ``fmr`` (n × FMR >= 1)."""
    return n_impostor > 0 and n_impostor * fmr >= 1 - _RESOLVE_TOL


# ------------------------------------------------------------------------------- EDC


def pauc(discard: np.ndarray, error: np.ndarray, limit: float) -> float:
    """Stepwise area under an EDC from zero discard up to ``limit`` (``compute_edc_pauc``).

    Each error value holds from its discard fraction up to the next point's ("hv" steps).
    As in the reference: ``limit`` must lie in [0, 1]; ``limit == 0`` gives 0; the step
    in which the limit falls (the first point ``i`` whose successor has discard >= limit,
    else the last point) contributes ``error[i] * (limit - discard[i])``; the terms are
    summed left to right in that order, so the float result is the reference's.
    """
    if not 0 <= limit <= 1:
        raise ValueError(f"pAUC limit {limit!r} is not in [0, 1]")
    if limit == 0:
        return 0.0
    d = np.asarray(discard, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    if d.size == 0 or d.size != e.size:
        raise ValueError("discard and error must be non-empty and of one length")
    reached = d[1:] >= limit
    k = int(np.argmax(reached)) if reached.any() else d.size - 1
    terms = np.append(e[:k] * (d[1 : k + 1] - d[:k]), e[k] * (limit - d[k]))
    return float(np.cumsum(terms)[-1])  # cumsum adds sequentially, like the reference loop


def best_case_area(starting_error: float, limit: float) -> float:
    """Area under the theoretical best EDC ``max(0, e0 - x)`` from 0 to ``limit``.

    ``e0²/2 - max(0, e0 - limit)²/2`` (``compute_edc_area_under_theoretical_best``,
    same arithmetic).
    """
    area = (starting_error**2) / 2
    if limit < starting_error:
        area -= ((starting_error - limit) ** 2) / 2
    return float(area)


EDC_THRESHOLD_RULES = {
    "threshold": "given",
    "fmr": "np.quantile(impostor similarity, 1 - fmr), linear",
    "starting_error": "np.quantile(genuine similarity, starting_error), linear",
}
EDC_DESCRIPTIONS = {
    "error": "FNMR of the genuine pairs kept, at the fixed threshold",
    "kept_genuine": "genuine pairs kept",
    "error_count": "false non-matches among the genuine pairs kept",
    "discard": "fraction of genuine pairs discarded (ascending pair quality)",
    "quality_cut": "lowest pair quality kept (-inf: NaN, ranked lowest; +inf: none kept)",
    "pauc": "stepwise area under the EDC from 0 to limit (compute_edc_pauc)",
    "best_case_area": "area under max(0, e0 - x) from 0 to limit",
    "pauc_minus_best": "pauc - best_case_area",
}


def edc(
    similarity: np.ndarray,
    genuine: np.ndarray,
    quality_a: np.ndarray,
    quality_b: np.ndarray,
    *,
    threshold: float | None = None,
    fmr: float | None = None,
    starting_error: float | None = None,
    discard_limits: Sequence[float] = (0.2, 0.3),
) -> xr.Dataset:
    """FNMR EDC over the genuine pairs, after ``dasec/quality-assessment-evaluation`` ``edc.py``.

    Inputs are per pair, over all pairs (genuine and impostor). Exactly one of
    ``threshold``, ``fmr`` and ``starting_error`` sets the similarity threshold τ, once:

    - ``threshold``: τ as given.
    - ``starting_error``: ``np.quantile(genuine similarities, starting_error)``, numpy's
      default (linear) method, as ``compute_edc(EdcErrorType.FNMR, starting_error=...)``.
    - ``fmr``: ``np.quantile(impostor similarities, 1 - fmr)`` (linear). This is the
      reference's FMR-type rule (``compute_edc(EdcErrorType.FMR, starting_error=fmr)``
      on the non-mated scores) used to fix the FNMR curve's τ; the reference's FNMR call
      itself only sees mated scores. Raises ``ValueError`` when the impostor pairs cannot
      resolve ``fmr`` (impostor pairs × fmr < 1): a configuration error, not a curve.

    The curve is :func:`_edc_curve`'s; ``pauc`` is :func:`pauc` (``compute_edc_pauc``) on it,
    (1, 0) included, and ``pauc_minus_best = pauc - best_case_area`` (``example.py``
    subtracts ``compute_edc_area_under_theoretical_best``), with e0 = error at zero discard.

    Returns ``error``, ``kept_genuine``, ``error_count`` over ``discard`` (coordinate
    ``quality_cut``: the lowest pair quality kept; -inf stands for NaN, +inf for "none
    kept"), and ``pauc``, ``best_case_area``, ``pauc_minus_best`` over ``limit``.
    """
    s, gen, key, _ = _pairs(similarity, genuine, quality_a, quality_b)
    source, target = _threshold_choice(threshold=threshold, fmr=fmr, starting_error=starting_error)
    gen_s, imp_s = s[gen], s[~gen]
    if gen_s.size == 0:
        raise ValueError("no genuine pairs: an FNMR EDC needs genuine comparisons")
    tau = _edc_threshold(source, target, gen_s, imp_s)
    curve = _edc_curve(key[gen], gen_s, tau)
    attrs = {
        "protocol": "EDC",
        "reference": REF_EDC,
        "error_type": "FNMR",
        "pair_quality": "min",
        "threshold": tau,
        "threshold_source": source,
        "threshold_target": target,
        "threshold_rule": EDC_THRESHOLD_RULES[source],
        "error_rule": "genuine pair with similarity < threshold",
        "starting_error": float(curve["error"][0]),
        "fmr_at_threshold": float(np.mean(imp_s >= tau)) if imp_s.size else math.nan,
        "genuine_pairs": int(gen_s.size),
        "impostor_pairs": int(imp_s.size),
        "nan_quality_genuine_pairs": int(np.isneginf(key[gen]).sum()),
    }
    return _edc_dataset(curve, np.asarray(tuple(discard_limits), dtype=np.float64), attrs)


def _threshold_choice(**given: float | None) -> tuple[str, float]:
    """The one argument that sets τ, and its value."""
    chosen = [name for name, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise ValueError(f"give exactly one of {', '.join(given)} (got {chosen or 'none'})")
    return chosen[0], float(given[chosen[0]])


def _unresolvable(n_impostor: int, fmr: float) -> str:
    """Why ``n_impostor`` pairs cannot resolve ``fmr``, in words ("" when they can)."""
    if _resolvable(n_impostor, fmr):
        return ""
    return (
        f"FMR {fmr:g} is not resolvable with {n_impostor} impostor pairs (needs >= {math.ceil(1 / fmr - _RESOLVE_TOL)})"
    )


def _edc_threshold(source: str, target: float, gen_s: np.ndarray, imp_s: np.ndarray) -> float:
    """τ by the rule of ``source`` (see :func:`edc`) from the genuine and impostor similarities."""
    if source == "threshold":
        return target
    if source == "fmr":
        if not 0 < target < 1:
            raise ValueError(f"fmr {target!r} is not in (0, 1)")
        why = _unresolvable(int(imp_s.size), target)
        if why:
            raise ValueError(f"{why}; give a larger fmr or a starting_error")
        return float(np.quantile(imp_s, 1 - target))
    if not 0 <= target <= 1:
        raise ValueError(f"starting_error {target!r} is not in [0, 1]")
    return float(np.quantile(gen_s, target))


def _edc_curve(gen_key: np.ndarray, gen_s: np.ndarray, tau: float) -> dict[str, np.ndarray]:
    """The FNMR EDC points of the genuine pairs (pair-quality sort keys, similarities) at τ.

    Followed from the reference (``edc.py``):

    - a genuine pair is an error when ``similarity < τ`` (``_form_error_comparison_decision``);
    - discard fractions relative to the genuine pairs (the curve's comparisons are the
      mated ones only); pairs sorted by ascending pair quality, one point at zero discard
      and one at the start of every further distinct quality level (ties leave
      together): ``error = remaining errors / remaining pairs``,
      ``discard = discarded / genuine pairs``;
    - the point (1, 0) is appended ("plotting edge cases"; the reference appends it when
      the last discard fraction is not 1, which is always, as at least one pair remains
      at the last quality level), so the curve reaches "no genuine pair left".

    The reference's sort (``np.argsort``, not stable) leaves tie order open; it cannot
    change the curve, since tied pairs only ever leave together.
    """
    n = gen_s.size
    order = np.argsort(gen_key, kind="stable")
    q = gen_key[order]
    miss = (gen_s[order] < tau).astype(np.int64)
    remaining = np.cumsum(miss[::-1])[::-1]  # errors among sorted pairs j..n-1
    cuts = np.concatenate([[0], np.flatnonzero(q[1:] != q[:-1]) + 1])
    kept = n - cuts
    errors = remaining[cuts]
    return {
        "discard": np.append(cuts / n, 1.0),
        "error": np.append(errors / kept, 0.0),
        "kept_genuine": np.append(kept, 0).astype(np.int64),
        "error_count": np.append(errors, 0).astype(np.int64),
        "quality_cut": np.append(q[cuts], np.inf),
    }


def _edc_dataset(curve: dict[str, np.ndarray], limits: np.ndarray, attrs: dict) -> xr.Dataset:
    """The curve and its areas up to each discard limit, every variable described."""
    paucs = np.array([pauc(curve["discard"], curve["error"], float(lim)) for lim in limits])
    best = np.array([best_case_area(attrs["starting_error"], float(lim)) for lim in limits])
    ds = xr.Dataset(
        {
            **{name: ("discard", curve[name]) for name in ("error", "kept_genuine", "error_count")},
            "pauc": ("limit", paucs),
            "best_case_area": ("limit", best),
            "pauc_minus_best": ("limit", paucs - best),
        },
        coords={"discard": curve["discard"], "quality_cut": ("discard", curve["quality_cut"]), "limit": limits},
        attrs=attrs,
    )
    for name, text in EDC_DESCRIPTIONS.items():
        ds[name].attrs = {"description": text}
    return ds


# ------------------------------------------------------------------------------- ERC


def _fmr_curve(genuine_distance: np.ndarray, impostor_distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate thresholds (distinct distances of all pairs) and FMR(T) = share of impostors <= T."""
    candidates = np.unique(np.concatenate([genuine_distance, impostor_distance]))
    false_matches = np.searchsorted(np.sort(impostor_distance), candidates, side="right")
    return candidates, false_matches / impostor_distance.size


def _closest(candidates: np.ndarray, rates: np.ndarray, fmr: float) -> int:
    """Index of the candidate whose FMR is closest to ``fmr``, the largest on ties."""
    deviation = np.abs(rates - fmr)
    return candidates.size - 1 - int(np.argmin(deviation[::-1]))


def erc_threshold(genuine_distance: np.ndarray, impostor_distance: np.ndarray, fmr: float) -> tuple[float, float]:
    """Distance threshold at a target FMR as in CR-FIQA ``ERC/roc.py``; returns (T, FMR(T)).

    ``calculate_roc(..., ds_scores=True)`` negates the distances, and its thresholds are
    the distinct scores of genuine AND impostor pairs together; its false matches at T are
    the impostors with ``-d >= -T``, i.e. distance <= T. ``get_fmr_op`` takes
    ``np.argmin(abs(fmr - op))``, the first minimum in its threshold order, which is
    descending distance: the largest T among equally close candidates.
    """
    gd = np.asarray(genuine_distance, dtype=np.float64)
    idist = np.asarray(impostor_distance, dtype=np.float64)
    if idist.size == 0:
        raise ValueError("no impostor pairs: no FMR to set a threshold at")
    candidates, rates = _fmr_curve(gd, idist)
    i = _closest(candidates, rates, fmr)
    return float(candidates[i]), float(rates[i])


ERC_RULES = {
    "distance": "arccos(clip(similarity, -1, 1)) / pi",
    "discard_rule": "drop the first int(u * pairs) of all pairs by ascending pair quality, u in "
    "np.arange(0, 0.98, {step!r}); stable order for ties",
    "threshold_rule": "re-computed at each step on the kept pairs: candidate distances of all kept pairs, "
    "FMR(T) = share of kept impostors with distance <= T, closest to the target FMR, largest T on ties",
    "fnmr_rule": "1 - (kept genuine with distance < T) / kept genuine",
    "auc_rule": "trapezoid over x = (100 * discard) / 100 (sklearn.metrics.auc in save_pdf)",
}
ERC_VARIABLES = {
    "fnmr": {
        "description": "FNMR of the kept genuine pairs at the threshold re-computed on the kept pairs "
        "(where resolvable = 0: at the closest achievable FMR, as the reference)",
        "nan_reason": "NaN where no genuine or no impostor pair is kept (the reference gives no number)",
    },
    "threshold": {"description": "distance threshold chosen at the target FMR (NaN: no pair to set it)"},
    "fmr_achieved": {"description": "FMR of the kept impostors at that threshold"},
    "resolvable": {"description": "1 where kept impostors × FMR >= 1"},
    "auc": {
        "description": "trapezoid area under the FNMR over the discard grid (the reference's number)",
        "nan_reason": "NaN where any FNMR of the row is NaN",
    },
    "auc_resolved": {"description": "1 when every step of the row resolves its FMR"},
    "unresolved_from": {"description": "first discard fraction whose kept impostors cannot resolve the FMR"},
    "discard": {"description": "target fraction u of all pairs discarded (int(u * pairs) are)"},
    "kept_genuine": {"description": "genuine pairs kept"},
    "kept_impostor": {"description": "impostor pairs kept"},
    "discarded_pairs": {"description": "int(u * pairs): pairs discarded"},
}


def erc(
    similarity: np.ndarray,
    genuine: np.ndarray,
    quality_a: np.ndarray,
    quality_b: np.ndarray,
    *,
    fmrs: Sequence[float] = (1e-2, 1e-3, 1e-4),
    step: float = 0.05,
) -> xr.Dataset:
    """FNMR ERC at fixed FMRs, after CR-FIQA ``ERC/erc.py`` (``getFNMRFixedTH``) and ``ERC/roc.py``.

    Distance = ``arccos(clip(similarity, -1, 1)) / π`` (``distance_``, cosine); pair quality
    ``min`` (``load_quality_pair``); the steps are :func:`_erc_steps`'s, and the AUC is
    ``sklearn.metrics.auc`` = trapezoid rule over x = ``(100 * grid) / 100`` (``save_pdf``
    scales the grid by 100 and back; that is not always the grid itself in float, e.g.
    0.35000000000000003 becomes 0.35), reproduced here; an AUC over a row with any NaN is NaN.

    Where the kept impostors cannot resolve the FMR (kept impostors × FMR < 1) the FNMR is
    still the reference's (the closest achievable FMR, typically 0), flagged by
    ``resolvable = 0``; ``unresolved_from`` is the first discard fraction where that happens
    and ``auc_resolved`` says whether the AUC's whole row resolves. NaN pair quality ranks
    lowest (module docstring).

    Returns ``fnmr``, ``threshold`` (distance) and ``fmr_achieved`` (FMR at that
    threshold) and ``resolvable`` over (``fmr``, ``discard``), ``auc`` over ``fmr``, and
    ``kept_genuine``, ``kept_impostor``, ``discarded_pairs`` over ``discard``.
    """
    s, gen, key, n_nan = _pairs(similarity, genuine, quality_a, quality_b)
    if s.size == 0:
        raise ValueError("no pairs to compute an ERC on")
    if not step > 0:
        raise ValueError(f"step {step!r} must be positive")
    targets = np.asarray(tuple(fmrs), dtype=np.float64)
    if targets.ndim != 1 or targets.size == 0 or np.any((targets <= 0) | (targets >= 1)):
        raise ValueError(f"fmrs {fmrs!r}: give FMRs in (0, 1)")
    if np.unique(targets).size != targets.size:
        raise ValueError(f"fmrs {fmrs!r} has duplicates")
    grid = np.arange(0, 0.98, step)
    steps = _erc_steps(np.arccos(np.clip(s, -1.0, 1.0)) / math.pi, gen, np.argsort(key, kind="stable"), grid, targets)
    x = (100 * grid) / 100
    steps["auc"] = np.array([float(np.trapezoid(row, x)) for row in steps["fnmr"]])
    unresolved = steps["resolvable"] == 0
    steps["auc_resolved"] = (~unresolved.any(axis=1)).astype(np.int8)
    steps["unresolved_from"] = np.where(unresolved.any(axis=1), grid[np.argmax(unresolved, axis=1)], np.nan)
    attrs = {
        "protocol": "ERC",
        "reference": REF_ERC,
        "error_type": "FNMR",
        "pair_quality": "min",
        **ERC_RULES,
        "discard_rule": ERC_RULES["discard_rule"].format(step=step),
        "step": float(step),
        "pairs": int(s.size),
        "genuine_pairs": int(gen.sum()),
        "impostor_pairs": int((~gen).sum()),
        "nan_quality_pairs": n_nan,
        "resolution": _erc_resolution(steps, grid, targets),
    }
    return _erc_dataset(steps, targets, grid, attrs)


def _erc_steps(
    distance: np.ndarray, gen: np.ndarray, order: np.ndarray, grid: np.ndarray, targets: np.ndarray
) -> dict[str, np.ndarray]:
    """Per target FMR and discard step: FNMR, threshold, achieved FMR, resolvable; per step: what is kept.

    Followed from the reference: pairs sorted ascending (``desc=True``, i.e. every method
    but PFE, is ``np.argsort(qlts)``: higher quality is better); at each ``u`` of the grid
    the first ``int(u * n)`` of ALL ``n`` pairs (genuine and impostor) are dropped, float
    truncation included (e.g. step 0.3, n 30: u = 0.8999999999999999 drops 26); at each step
    the threshold is re-computed on the kept pairs (despite the name ``getFNMRFixedTH``),
    see :func:`erc_threshold`; FNMR = ``1 - (kept genuine with distance < T) / kept
    genuine`` (that arithmetic), i.e. the share with distance >= T.

    Deviations, on purpose: ties in pair quality keep their input order (``order`` is a
    stable sort; the reference's ``np.argsort`` is not, so where tied qualities straddle
    ``int(u*n)`` its result depends on the sort implementation, not on the data alone).
    FNMR is NaN only where the reference gives no number: no genuine pair kept (it divides
    by zero), or no impostor kept (its FMR is 0/0, and its argmin over NaN picks an
    arbitrary threshold).
    """
    shape = (targets.size, grid.size)
    out = {name: np.full(shape, np.nan) for name in ("fnmr", "threshold", "fmr_achieved")}
    out["resolvable"] = np.zeros(shape, dtype=np.int8)
    out |= {name: np.zeros(grid.size, dtype=np.int64) for name in ("kept_genuine", "kept_impostor", "discarded_pairs")}
    for j, u in enumerate(grid):
        out["discarded_pairs"][j] = int(u * distance.size)
        kept = order[out["discarded_pairs"][j] :]
        gd = distance[kept][gen[kept]]
        idist = distance[kept][~gen[kept]]
        out["kept_genuine"][j], out["kept_impostor"][j] = gd.size, idist.size
        out["resolvable"][:, j] = [_resolvable(idist.size, float(t)) for t in targets]
        if idist.size == 0:
            continue
        candidates, rates = _fmr_curve(gd, idist)
        for i, target in enumerate(targets):
            c = _closest(candidates, rates, float(target))
            out["threshold"][i, j], out["fmr_achieved"][i, j] = candidates[c], rates[c]
            if gd.size:
                out["fnmr"][i, j] = 1 - np.count_nonzero(gd < candidates[c]) / gd.size
    return out


def _erc_resolution(steps: dict[str, np.ndarray], grid: np.ndarray, targets: np.ndarray) -> str:
    """In words: from which discard on each FMR stops resolving, and the steps that keep no pair of a kind."""
    unresolved = steps["resolvable"] == 0
    summary = [
        f"fmr={target:g}: not resolvable (kept impostors × FMR < 1) from discard {steps['unresolved_from'][i]:.2f}, "
        f"{int(unresolved[i].sum())} of {grid.size} steps: the reference's number, flagged"
        for i, target in enumerate(targets)
        if unresolved[i].any()
    ]
    for name, what in (("kept_genuine", "genuine"), ("kept_impostor", "impostor")):
        count = np.sum(steps[name] == 0)
        if count:
            summary.append(f"{int(count)} of {grid.size} steps keep no {what} pair: NaN")
    return "; ".join(summary) if summary else "every step resolves every FMR"


def _erc_dataset(steps: dict[str, np.ndarray], targets: np.ndarray, grid: np.ndarray, attrs: dict) -> xr.Dataset:
    """The steps as a Dataset over (fmr, discard), every variable described."""
    dims = {
        **{name: ("fmr", "discard") for name in ("fnmr", "threshold", "fmr_achieved", "resolvable")},
        **{name: ("fmr",) for name in ("auc", "auc_resolved", "unresolved_from")},
        **{name: ("discard",) for name in ("kept_genuine", "kept_impostor", "discarded_pairs")},
    }
    ds = xr.Dataset(
        {name: (dim, steps[name]) for name, dim in dims.items()}, coords={"fmr": targets, "discard": grid}, attrs=attrs
    )
    for name, attributes in ERC_VARIABLES.items():
        ds[name].attrs = dict(attributes)
    return ds


# -------------------------------------------------------------------------- workflow


ERC_FMRS = (1e-2, 1e-3, 1e-4)  # CR-FIQA's operating points
ERC_STEP = 0.05
COMPUTED = "computed"


def edc_obstacle(genuine_pairs: int, impostor_pairs: int, threshold_from: str, target: float) -> str:
    """Why an EDC cannot be computed on these pairs ("" when it can)."""
    if genuine_pairs == 0:
        return "no genuine pairs"
    why = _unresolvable(impostor_pairs, target) if threshold_from == "fmr" else ""
    return f"{why}; use a larger FMR or a starting FNMR" if why else ""


def _not_computed_edc(limits: Sequence[float]) -> xr.Dataset:
    """An EDC result of NaNs with the variables of :func:`edc`, for a dataset it cannot be computed on."""
    nan = np.full(len(limits), np.nan)
    return xr.Dataset(
        {
            "error": ("discard", [np.nan]),
            "kept_genuine": ("discard", [0]),
            "error_count": ("discard", [0]),
            **{name: ("limit", nan) for name in ("pauc", "best_case_area", "pauc_minus_best")},
        },
        coords={"discard": [0.0], "quality_cut": ("discard", [np.nan]), "limit": np.asarray(limits, float)},
        attrs={"protocol": "EDC", "reference": REF_EDC},
    )


def _not_computed_erc() -> xr.Dataset:
    """An ERC result of NaNs with the variables of :func:`erc`, for a dataset it cannot be computed on."""
    grid = np.arange(0, 0.98, ERC_STEP)
    shape = (len(ERC_FMRS), grid.size)
    per_step = {name: ("discard", np.zeros(grid.size, np.int64)) for name in ("kept_genuine", "kept_impostor")}
    return xr.Dataset(
        {
            **{name: (("fmr", "discard"), np.full(shape, np.nan)) for name in ("fnmr", "threshold", "fmr_achieved")},
            "resolvable": (("fmr", "discard"), np.zeros(shape, np.int8)),
            "auc": ("fmr", np.full(len(ERC_FMRS), np.nan)),
            "auc_resolved": ("fmr", np.zeros(len(ERC_FMRS), np.int8)),
            "unresolved_from": ("fmr", np.full(len(ERC_FMRS), np.nan)),
            **per_step,
            "discarded_pairs": ("discard", np.zeros(grid.size, np.int64)),
        },
        coords={"fmr": list(ERC_FMRS), "discard": grid},
        attrs={"protocol": "ERC", "reference": REF_ERC},
    )


def error_versus_discard(
    pairs: xr.Dataset,
    embeddings: xr.Dataset,
    quality: xr.Dataset,
    threshold_from: str = "fmr",
    threshold_target: float = 0.01,
    pauc_limits: Sequence[float] = (0.2, 0.3),
) -> xr.Dataset:
    """EDC and ERC of one (dataset, model, FIQA) in one Dataset, or the reason each is not computed.

    ``threshold_from`` ``"fmr"`` sets the EDC's τ at FMR ``threshold_target`` on the impostor
    similarities, ``"fnmr"`` at that starting FNMR on the genuine ones. The ERC uses its
    protocol's FMRs (1e-2, 1e-3, 1e-4) and step 0.05. A dataset without genuine pairs (one
    image per person) has neither curve, one without impostor pairs no ERC, and an FMR the
    impostor pairs cannot resolve no EDC: the attributes ``edc_status`` and ``erc_status``
    say so (``computed`` otherwise) and the variables are NaN, so one such dataset never
    stops the others.

    Variables: ``edc_error``, ``edc_kept_genuine``, ``edc_error_count`` over ``discard``
    (coordinate ``edc_quality_cut``); ``pauc``, ``best_case_area``, ``pauc_minus_best``
    over ``limit``; ``erc_fnmr``, ``erc_threshold``, ``erc_fmr_achieved``,
    ``erc_resolvable`` over (``fmr``, ``erc_discard``); ``erc_kept_genuine``,
    ``erc_kept_impostor``, ``erc_discarded_pairs`` over ``erc_discard``; ``auc``,
    ``auc_resolved``, ``unresolved_from`` over ``fmr``. Attributes of each protocol carry
    the prefix ``edc_`` / ``erc_``.
    """
    if threshold_from not in ("fmr", "fnmr"):
        raise ValueError(f"threshold_from = {threshold_from!r}: use 'fmr' or 'fnmr'")
    a, b = pairs["a"].values, pairs["b"].values
    genuine = pairs["genuine"].values.astype(bool)
    n_gen, n_imp = int(genuine.sum()), int((~genuine).sum())
    similarity = comparison_scores(embeddings["embedding"], a, b)
    q = quality["quality"]
    qa, qb = q.sel(image=a).values, q.sel(image=b).values
    target = float(threshold_target)
    edc_why = edc_obstacle(n_gen, n_imp, threshold_from, target)
    erc_why = "no genuine pairs" if n_gen == 0 else ("no impostor pairs" if n_imp == 0 else "")
    if edc_why:
        e = _not_computed_edc(pauc_limits)
    else:
        kwargs = {"fmr": target} if threshold_from == "fmr" else {"starting_error": target}
        e = edc(similarity, genuine, qa, qb, discard_limits=tuple(pauc_limits), **kwargs)
    r = _not_computed_erc() if erc_why else erc(similarity, genuine, qa, qb, fmrs=ERC_FMRS, step=ERC_STEP)
    e_attrs, r_attrs = e.attrs, r.attrs
    e = e.rename({name: f"edc_{name}" for name in ("error", "kept_genuine", "error_count", "quality_cut")})
    kept = ("auc", "auc_resolved", "unresolved_from", "fmr")
    r = r.rename({name: f"erc_{name}" for name in r.variables if name not in kept})
    ds = e.assign({name: r[name] for name in r.data_vars})  # keeps each variable's attributes
    ds.attrs = {
        "protocol": "EDC + ERC",
        "similarity": "cosine",
        "pair_quality": "min",
        "threshold_from": threshold_from,
        "threshold_target": target,
        "genuine_pairs": n_gen,
        "impostor_pairs": n_imp,
        "edc_status": f"not computed: {edc_why}" if edc_why else COMPUTED,
        "erc_status": f"not computed: {erc_why}" if erc_why else COMPUTED,
        **{f"edc_{k}": v for k, v in e_attrs.items()},
        **{f"erc_{k}": v for k, v in r_attrs.items()},
    }
    return ds

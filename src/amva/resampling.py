"""Permutation tests and bootstrap intervals that respect who is in the bins.

Images of one group (an identity, or the photo the demo's variants were made from) are
not independent: near-copies vary little whatever their quality. Both procedures
therefore move *groups*, not images, wherever a group's images could otherwise be
split or duplicated independently:

* a group with images in both sets (a *mixed* group, as every group of matched bins)
  keeps its images; only its set labels are shuffled among them (a stratified
  permutation), and a bootstrap draws it whole, its images of both sets together;
* a group wholly in one set (a *pure* group) moves as a unit: the permutation shuffles
  the set labels of the pure groups, keeping how many are in each set, and the
  bootstrap draws pure groups of each set among themselves.

When every group is one image, every group is pure and both are exactly the
image-level procedures: labels shuffled over the pooled images with the set sizes
kept, and images resampled within each set.

Maps are flat ``(images, pixels)`` float64 arrays; ``weights`` ``(pixels, 2)`` turns a
flat map into its mean inside and outside the face mask (columns in that order).
"""

from __future__ import annotations

import numpy as np

BATCH = 128  # resamples / permutations per matmul; bounds memory at ~2 x BATCH x pixels float64
_TIE_TOL = 1e-9  # relative: label swaps that leave the split unchanged must count as ties despite rounding


def std_from_sums(s1: np.ndarray, s2: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Pixel-wise std (ddof=1) from the sums of values and squares of ``n`` (centred) maps.

    ``n`` may differ per row (a column vector); rows with ``n < 2`` are NaN.
    """
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
    np.maximum(var, 0.0, out=var)  # rounding can leave tiny negatives where all maps agree
    var[np.broadcast_to(n < 2, var.shape)] = np.nan
    return np.sqrt(var, out=var)


def group_codes(groups: np.ndarray) -> np.ndarray:
    """Integer codes of group labels in order of first appearance (so names never change the draws)."""
    _, first, inverse = np.unique(np.asarray(groups).astype(str), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


class Design:
    """Which images belong to which set and group, and which groups are mixed or pure."""

    def __init__(self, groups: list[np.ndarray]) -> None:
        self.sizes = [len(g) for g in groups]
        self.set_of = np.repeat(np.arange(len(groups)), self.sizes)
        self.codes = group_codes(np.concatenate(groups)) if self.set_of.size else np.zeros(0, int)
        n_groups = int(self.codes.max()) + 1 if self.codes.size else 0
        present = np.zeros((n_groups, len(groups)), dtype=bool)
        present[self.codes, self.set_of] = True
        self.pattern = present  # (group, set): the group has images in the set
        self.mixed = present.sum(axis=1) > 1

    @property
    def groups(self) -> int:
        return self.pattern.shape[0]

    def groups_in(self, s: int) -> int:
        """Distinct groups with images in set ``s``."""
        return int(self.pattern[:, s].sum())

    def singletons(self) -> bool:
        """Every group is one image: grouped and image-level procedures coincide."""
        return self.groups == self.codes.size

    def split(self, per_image: np.ndarray) -> list[np.ndarray]:
        """Columns of a ``(rows, images)`` array, one block per set."""
        return np.split(per_image, np.cumsum(self.sizes)[:-1], axis=1)


def _resample_groups(design: Design, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, groups)`` draw counts: each stratum of groups (same set pattern) resampled with replacement."""
    counts = np.zeros((n_boot, design.groups))
    _, stratum = np.unique(design.pattern, axis=0, return_inverse=True)
    for s in np.unique(stratum):
        members = np.flatnonzero(stratum.ravel() == s)
        draws = members[rng.integers(0, members.size, size=(n_boot, members.size))]
        np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts


def bootstrap_region_means(
    sets: list[np.ndarray],
    groups: list[np.ndarray],
    weights: np.ndarray,
    n_boot: int,
    seed: int | np.random.SeedSequence = 0,
    bias_correct: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cluster-bootstrap replicates of every set's region means of MAM and AM-V.

    Groups are drawn with replacement within their stratum (mixed groups with their
    images of every set together, pure groups among the pure groups of their set), so a
    replicate's set sizes vary when group sizes do. Each replicate's MAM and AM-V come
    from per-pixel sums weighted by the draw counts ``c``: Σa = c @ x and Σa² = c @ x², on
    maps centred by the set's mean against cancellation.

    Duplicates make a resample's AM-V sit low: an image drawn twice adds a pair at
    distance 0 ((n-1)/n of the variance in the image-level case), and a group drawn twice
    also gives its within-group pairs more weight than its between-group ones. Plain
    percentile intervals then miss the estimate, worse with fewer groups. ``bias_correct``
    scales every AM-V replicate by AM-V(set) / mean(replicates), the bootstrap's own
    estimate of that (multiplicative) bias, per region. Returns per set ``(mam, amv)``, each
    ``(n_boot, 2)`` with columns inside, outside; replicates with fewer than 2 images are NaN.
    """
    design = Design(groups)
    rng = np.random.default_rng(seed)
    per_image = _resample_groups(design, n_boot, rng)[:, design.codes]
    out = []
    for x, counts in zip(sets, design.split(per_image), strict=True):
        n = counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            mam = counts @ (x @ weights) / n
        xc = x - x.mean(axis=0)
        xc2 = xc * xc
        amv = np.empty((n_boot, 2))
        for s in range(0, n_boot, BATCH):
            c, m = counts[s : s + BATCH], n[s : s + BATCH]
            amv[s : s + BATCH] = std_from_sums(c @ xc, c @ xc2, m) @ weights
        if bias_correct and n_boot:
            with np.errstate(invalid="ignore"):
                amv *= (x.std(axis=0, ddof=1) @ weights) / np.nanmean(amv, axis=0)
        out.append((mam, amv))
    return out


def bootstrap_medians(
    values: list[np.ndarray], groups: list[np.ndarray], n_boot: int, seed: int | np.random.SeedSequence = 0
) -> np.ndarray:
    """Cluster-bootstrap replicates ``(n_boot, sets)`` of each set's median of a per-image value.

    Groups are drawn as :func:`bootstrap_region_means` draws them; a replicate's median is the
    median of its images weighted by their draw counts (the lower one on a tie, as
    :func:`numpy.median` of the replicate's images repeated would give up to averaging).
    NaN values take no part; a replicate with no finite value is NaN."""
    design = Design(groups)
    counts = _resample_groups(design, n_boot, np.random.default_rng(seed))[:, design.codes]
    out = np.full((n_boot, len(values)), np.nan)
    for s, (v, c) in enumerate(zip(values, design.split(counts), strict=True)):
        finite = np.isfinite(v)
        if not finite.any():
            continue
        order = np.argsort(v[finite], kind="stable")
        w = np.cumsum(c[:, finite][:, order], axis=1)
        half = np.argmax(w >= w[:, -1:] / 2, axis=1)
        valid = w[:, -1] > 0
        out[valid, s] = v[finite][order][half[valid]]
    return out


def _permuted_membership(design: Design, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_perm + 1, images)`` 0/1 membership in set 0; row 0 is the observed split.

    Mixed groups shuffle their set labels among their own images; pure groups shuffle
    theirs among the pure groups (how many are in set 0 is kept).
    """
    n = design.codes.size
    observed = (design.set_of == 0).astype(np.float64)
    member = np.empty((n_perm + 1, n))
    member[0] = observed
    codes = design.codes
    mixed_image = design.mixed[codes]
    if n_perm == 0:
        return member
    # mixed groups: rank the group's images in random order; the first h_g are set 0
    keys = codes[None, :] + rng.random((n_perm, n))
    order = np.argsort(keys, axis=1, kind="stable")
    sorted_codes = np.sort(codes)
    start = np.searchsorted(sorted_codes, np.arange(design.groups))
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, (np.arange(n) - start[sorted_codes])[None, :], axis=1)
    in_first = np.bincount(codes, weights=observed, minlength=design.groups)
    within = rank < in_first[codes][None, :]
    # pure groups: shuffle which of them are in set 0
    pure = np.flatnonzero(~design.mixed)
    pure_first = design.pattern[pure, 0]
    group_first = np.zeros((n_perm, design.groups), dtype=bool)
    if pure.size:
        shuffled = rng.permuted(np.tile(pure_first, (n_perm, 1)), axis=1)
        group_first[:, pure] = shuffled
    member[1:] = np.where(mixed_image[None, :], within, group_first[:, codes])
    return member


def permutation_test(
    x_a: np.ndarray,
    x_b: np.ndarray,
    weights: np.ndarray,
    n_perm: int,
    seed: int | np.random.SeedSequence = 0,
    groups_a: np.ndarray | None = None,
    groups_b: np.ndarray | None = None,
) -> dict[str, float]:
    """Permutation test that set ``b`` (LOW) has more AM-V outside the face than ``a`` (HIGH).

    Statistics: T = outside mean AM-V(b) − outside mean AM-V(a), and
    R = outside/inside AM-V ratio(b) − ratio(a). Labels move as the module docstring says
    (groups default to one per image: the plain image-level test); one-sided
    p = (1 + #{T_perm ≥ T}) / (1 + n_perm). The observed statistics go through the same
    sums as the permuted ones, and ties are counted with a relative tolerance of 1e-9.
    Also returns how many groups' labels can move (``perm_groups``); with none, every
    permutation is the observed split and p = 1.
    """
    n_a, n_b = x_a.shape[0], x_b.shape[0]
    ga = np.asarray(groups_a if groups_a is not None else [f"a{i}" for i in range(n_a)])
    gb = np.asarray(groups_b if groups_b is not None else [f"b{i}" for i in range(n_b)])
    design = Design([ga, gb])
    pooled = np.concatenate([x_a, x_b])
    xc = pooled - pooled.mean(axis=0)
    xc2 = xc * xc
    tot1, tot2 = xc.sum(axis=0), xc2.sum(axis=0)
    member = _permuted_membership(design, n_perm, np.random.default_rng(seed))
    t = np.empty(n_perm + 1)
    r = np.empty(n_perm + 1)
    for s in range(0, n_perm + 1, BATCH):
        g = member[s : s + BATCH]
        m_a = g.sum(axis=1, keepdims=True)
        s1, s2 = g @ xc, g @ xc2
        reg_a = std_from_sums(s1, s2, m_a) @ weights
        reg_b = std_from_sums(tot1 - s1, tot2 - s2, n_a + n_b - m_a) @ weights
        t[s : s + BATCH] = reg_b[:, 1] - reg_a[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r[s : s + BATCH] = reg_b[:, 1] / reg_b[:, 0] - reg_a[:, 1] / reg_a[:, 0]
    pure_sets = design.pattern[~design.mixed]
    swappable = bool(pure_sets[:, 0].any() and pure_sets[:, 1].any())  # pure groups of one set only cannot swap
    movable = int(design.mixed.sum()) + (len(pure_sets) if swappable else 0)
    return {
        "perm_statistic": float(t[0]),
        "perm_p_value": _p_value(t, n_perm),
        "perm_ratio_statistic": float(r[0]),
        "perm_ratio_p_value": _p_value(r, n_perm),
        "perm_groups": movable,
    }


def _p_value(stat: np.ndarray, n_perm: int) -> float:
    if n_perm == 0 or not np.isfinite(stat[0]):
        return float("nan")
    tol = _TIE_TOL * max(abs(stat[0]), np.finfo(np.float64).tiny)
    return float((1 + np.count_nonzero(stat[1:] >= stat[0] - tol)) / (1 + n_perm))

"""Pairs from identities at realistic sizes: every genuine pair, impostor pairs sampled uniformly, memory O(pairs)."""

import time
import tracemalloc
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from amva.datasets.faces import MAX_IMPOSTOR_PAIRS, identity_pairs


def people(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` image ids of identities with 1-9 images each (about five), as a real face set has."""
    sizes = np.random.default_rng(seed).integers(1, 10, n)
    identity = np.repeat(np.arange(n), sizes)[:n]
    names = np.array([f"person{x:06d}" for x in identity])
    return [f"{name}/{i:06d}.jpg" for i, name in enumerate(names)], names


def positions(pairs, ids):
    index = pd.Index(ids)
    return index.get_indexer(pairs["a"].values), index.get_indexer(pairs["b"].values)


def test_every_pair_when_they_fit_in_the_cap():
    """At most max_impostor_pairs impostors: all pairs, exactly itertools.combinations' order (the demo's pairs)."""
    ids, identity = people(40, seed=1)
    pairs = identity_pairs(ids, identity, seed=5)
    expected = list(combinations(range(40), 2))
    assert list(zip(*positions(pairs, ids), strict=True)) == expected
    np.testing.assert_array_equal(pairs["genuine"].values, [identity[i] == identity[j] for i, j in expected])
    genuine = int(pairs["genuine"].sum())
    assert pairs.attrs["genuine_pairs"] == genuine > 0
    assert pairs.attrs["impostor_pairs"] == pairs.attrs["impostor_pairs_available"] == len(expected) - genuine
    assert pairs.attrs["max_impostor_pairs"] == MAX_IMPOSTOR_PAIRS and pairs.attrs["seed"] == 5


def test_50k_images_in_seconds_and_under_200_mb():
    ids, identity = people(50_000)
    tracemalloc.start()
    start = time.perf_counter()
    pairs = identity_pairs(ids, identity, seed=0)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # ~90 MiB measured (docs/benchmarks.md)
    assert seconds < 60  # ~0.3 s measured
    _, sizes = np.unique(identity, return_counts=True)
    n_genuine = int((sizes * (sizes - 1) // 2).sum())
    available = 50_000 * 49_999 // 2 - n_genuine
    assert pairs.attrs["genuine_pairs"] == n_genuine and pairs.attrs["impostor_pairs"] == MAX_IMPOSTOR_PAIRS
    assert pairs.attrs["impostor_pairs_available"] == available
    assert pairs.sizes["pair"] == n_genuine + MAX_IMPOSTOR_PAIRS
    a, b = positions(pairs, ids)
    assert (a < b).all()  # image order, each unordered pair once …
    key = a.astype(np.int64) * 50_000 + b
    assert (np.diff(key) > 0).all()  # … sorted, hence no pair twice
    np.testing.assert_array_equal(pairs["genuine"].values, identity[a] == identity[b])


@pytest.mark.parametrize("cap", [3, 9])  # below and above half of the 12 impostor pairs (the complement is drawn)
def test_impostors_are_a_uniform_sample_without_replacement(cap):
    ids, identity = ["a1", "a2", "b1", "b2", "c1", "c2"], np.array(["a", "a", "b", "b", "c", "c"])
    counts: dict[tuple[str, str], int] = {}
    runs = 1200
    for seed in range(runs):
        pairs = identity_pairs(ids, identity, max_impostor_pairs=cap, seed=seed)
        impostor = ~pairs["genuine"].values
        assert impostor.sum() == cap and pairs.sizes["pair"] == cap + 3
        drawn = list(zip(pairs["a"].values[impostor], pairs["b"].values[impostor], strict=True))
        assert len(set(drawn)) == cap
        for pair in drawn:
            counts[pair] = counts.get(pair, 0) + 1
    assert len(counts) == 12
    expected = runs * cap / 12  # 300 or 900, binomial sd 15 in both
    assert all(abs(c - expected) < 75 for c in counts.values()), counts


def test_the_sample_does_not_depend_on_the_listing_order():
    ids, identity = people(3000, seed=2)
    order = np.random.default_rng(0).permutation(3000)
    kwargs = {"max_impostor_pairs": 20_000, "seed": 7}
    first = identity_pairs(ids, identity, **kwargs)
    shuffled = identity_pairs([ids[i] for i in order], identity[order], **kwargs)
    other_seed = identity_pairs(ids, identity, max_impostor_pairs=20_000, seed=8)

    def unordered(pairs):
        return {frozenset(p) for p in zip(pairs["a"].values, pairs["b"].values, strict=True)}

    assert unordered(first) == unordered(shuffled)
    assert len(unordered(first) ^ unordered(other_seed)) > 10_000  # another seed, another sample


def test_one_huge_identity_is_refused_before_any_pair_is_built():
    """50k images of one person would be 1.25 billion genuine pairs: a clear error, not an exhausted memory."""
    ids = [f"x/{i:05d}.jpg" for i in range(50_000)]
    identity = np.array(["someone"] * 49_000 + [f"other{i}" for i in range(1_000)])
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"1,200,475,500 genuine pairs exceed 10,000,000: identity 'someone'.*49,000"):
        identity_pairs(ids, identity)
    assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    tracemalloc.stop()

"""Quality bins: matched bins per group, group labels and the bins' make-up, against hand counts."""

import numpy as np
import pytest
import xarray as xr

from amva.bins import assign_bins, bins_dataset, group_labels, group_share, total_variation


def scored(values, groups):
    ids = [f"img{i:03d}" for i in range(len(values))]
    q = xr.Dataset({"quality": xr.DataArray(np.asarray(values, float), coords={"image": ids}, dims="image")})
    return q, xr.DataArray(np.asarray(groups), coords={"image": ids}, dims="image")


def test_group_share_rounds_up_and_never_overlaps():
    assert [group_share(0.1, n) for n in (1, 2, 5, 10, 11, 31)] == [0, 1, 1, 1, 2, 4]
    assert [group_share(3, n) for n in (1, 2, 5, 6, 31)] == [0, 1, 2, 3, 3]
    assert group_share(0.5, 7) == 3
    with pytest.raises(ValueError, match="share in"):
        group_share(0.6, 10)


def test_matched_bins_take_the_same_share_of_every_group():
    rng = np.random.default_rng(0)
    sizes = {"a": 20, "b": 10, "c": 5, "d": 1}  # d: one image, no pair: left out
    groups = np.repeat(list(sizes), list(sizes.values()))
    values = rng.normal(size=groups.size) + (groups == "a") * 10  # group a scores far above the rest
    q, g = scored(values, groups)
    ds = bins_dataset(q, "matched", k=0.2, groups=g, group_by="source")
    labels = ds["bin"].values
    for name, n in sizes.items():
        member = groups == name
        want = group_share(0.2, n)
        assert (labels[member] == "high").sum() == (labels[member] == "low").sum() == want, name
        if want:
            v = values[member]
            high, low = v[labels[member] == "high"], v[labels[member] == "low"]
            assert high.min() > v[labels[member] == ""].max() >= v[labels[member] == ""].min() > low.max()
    assert ds["makeup_tvd"].item() == 0.0
    assert ds["bin_groups"].values.tolist() == [3, 3]
    assert ds["largest_group"].values.tolist() == ["a", "a"]
    assert ds["largest_group_share"].values == pytest.approx([4 / 7, 4 / 7])
    assert ds.attrs["groups_left_out"] == 1 and ds.attrs["images_left_out_with_their_group"] == 1
    assert ds.attrs["group_by"] == "source"
    # the paper's HIGH/LOW on the same scores: HIGH is all group a
    plain = bins_dataset(q, "high_low", k=7, groups=g)
    assert plain["bin_groups"].values.tolist()[0] == 1 and plain["largest_group_share"].values[0] == 1.0
    assert plain["makeup_tvd"].item() == 1.0  # LOW holds no image of group a: no group in common


def test_total_variation_by_hand():
    a = np.array(["x", "x", "x", "y"])  # 3/4 x, 1/4 y
    b = np.array(["x", "y", "z", "z"])  # 1/4 x, 1/4 y, 1/2 z
    assert total_variation(a, b) == pytest.approx(0.5 * (0.5 + 0 + 0.5))
    assert total_variation(a, a[::-1]) == 0.0


def test_matched_bins_need_groups_with_pairs():
    q, g = scored([1.0, 2.0, 3.0], ["a", "b", "c"])
    with pytest.raises(ValueError, match="no group has two scored images"):
        assign_bins(q["quality"], "matched", k=0.3, groups=g)
    with pytest.raises(ValueError, match="need a group"):
        assign_bins(q["quality"], "matched", k=0.3)


def test_one_image_per_group_has_no_make_up_distance():
    q, g = scored(np.arange(10.0), [f"face{i}" for i in range(10)])
    ds = bins_dataset(q, "high_low", k=3, groups=g)
    assert np.isnan(ds["makeup_tvd"].item()) and ds["bin_groups"].values.tolist() == [3, 3]
    assert bins_dataset(q, "high_low", k=3)["makeup_tvd"].isnull().item()  # no groups given: the same


def test_nan_scores_are_in_no_bin_and_do_not_count_for_the_group():
    q, g = scored([1.0, np.nan, 3.0, 4.0, 0.5], ["a", "a", "a", "b", "b"])
    labels = assign_bins(q["quality"], "matched", k=0.5, groups=g)
    assert labels.values.tolist() == ["low", "", "high", "high", "low"]


def test_group_labels_by_name_none_and_unknown():
    ids = ["p/1", "p/2", "q/1"]
    faces = xr.Dataset(
        coords={"image": ids, "identity": ("image", ["p", "p", "q"]), "source": ("image", ["s", "t", "u"])}
    )
    assert group_labels(faces, "identity").values.tolist() == ["p", "p", "q"]
    assert group_labels(faces, "none").values.tolist() == ids
    with pytest.raises(ValueError, match=r"group 'photo' is not a label.*'identity', 'source', 'none'"):
        group_labels(faces, "photo")


def test_ties_across_a_bins_edge_are_counted():
    """Which of two equal scores lands in HIGH is the image id's doing, not quality's: counted per bin."""
    q, g = scored([5, 4, 3, 3, 2, 1], ["a"] * 6)
    ds = bins_dataset(q, "high_low", k=3, groups=g)
    assert ds["bin_ties"].values.tolist() == [1, 1]  # one 3 in HIGH, the other in LOW
    assert bins_dataset(q, "high_low", k=2, groups=g)["bin_ties"].values.tolist() == [0, 0]
    flat, groups = scored([0.5] * 12, ["a", "b", "c"] * 4)
    assert bins_dataset(flat, "high_low", k=3, groups=groups)["bin_ties"].values.tolist() == [3, 3]
    matched = bins_dataset(flat, "matched", k=1, groups=groups, group_by="g")
    assert matched["bin_ties"].values.tolist() == [3, 3]  # within each group, every pick was a tie
    # matched bins compare within a group: equal scores in different groups are no tie
    q2, g2 = scored([2, 1, 2, 1], ["a", "a", "b", "b"])
    assert bins_dataset(q2, "matched", k=1, groups=g2, group_by="g")["bin_ties"].values.tolist() == [0, 0]

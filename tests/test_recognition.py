"""The demo ladder and SFace as a face recogniser: identities and pairs make sense."""

import numpy as np
import torch

from amva.embeddings import embed
from amva.evaluation import comparison_scores


def test_demo_labels_and_pairs(demo):
    faces, pairs, rejected = demo
    assert rejected.empty and list(rejected.columns) == ["id", "path", "reason"]
    n = faces.sizes["image"]
    assert n == 5 * (1 + 10 * 3)
    assert set(faces["identity"].values) == {"obama", "biden", "astronaut"}
    assert faces["pixels"].dtype == np.uint8 and faces["pixels"].shape[1:] == (112, 112, 3)
    counts = {k: int((faces["identity"] == k).sum()) for k in ("obama", "biden", "astronaut")}
    genuine = sum(c * (c - 1) // 2 for c in counts.values())
    assert pairs.sizes["pair"] == n * (n - 1) // 2
    assert int(pairs["genuine"].sum()) == genuine


def test_same_person_scores_above_different_person(sface, demo):
    faces, _pairs, _ = demo
    originals = faces.sel(image=faces["severity"] == 0)
    emb = embed(originals, sface, torch.device("cpu"))["embedding"]
    same = comparison_scores(
        emb,
        np.array(["obama/original/0", "obama/original/0", "obama2/original/0"]),
        np.array(["obama2/original/0", "obama3/original/0", "obama3/original/0"]),
    )
    diff = comparison_scores(
        emb,
        np.array(["obama/original/0", "obama/original/0", "biden/original/0"]),
        np.array(["biden/original/0", "astronaut/original/0", "astronaut/original/0"]),
    )
    assert same.min() > 0.5 and diff.max() < 0.363  # OpenCV's SFace cosine threshold

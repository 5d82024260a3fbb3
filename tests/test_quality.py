"""SER-FIQ on real demo faces: the formula, seeding, and the direction it must have."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amva.models import to_tensor
from amva.quality import score
from amva.quality.serfiq import DropoutMasks, folded_head, image_generator, serfiq


@pytest.fixture(scope="module")
def obama(demo):
    faces = demo[0]
    sel = faces.sel(image=(faces["source"] == "obama") & faces["degradation"].isin(["none", "gaussian_blur"]))
    return sel


class TanhHead(nn.Module):
    """The real SFace with a squashing after its head: not affine, so SER-FIQ must not fold it."""

    def __init__(self, sface):
        super().__init__()
        self.sface = sface

    def pre_dropout(self, x):
        return self.sface.pre_dropout(x)

    def head(self, f):
        return torch.tanh(self.sface.head(f) / 4)


def reference_keep(gen, T, n_features):
    """0/1 masks from the generator's int64 words, unpacked by numpy (little-endian bytes and bits)."""
    words = torch.empty(T, -(-n_features // 64), dtype=torch.int64).random_(-(2**63), None, generator=gen)
    return np.unpackbits(words.numpy().view(np.uint8), axis=1, bitorder="little")[:, :n_features].astype(np.float32)


@pytest.mark.parametrize("affine", [True, False])
def test_serfiq_equals_formula_with_same_masks(sface, obama, affine):
    model = sface if affine else TanhHead(sface)
    ids = obama["image"].values.tolist()[:2]
    x = to_tensor(obama["pixels"].sel(image=ids).values)
    q = serfiq(model, x, ids, T=10, dropout=0.5, seed=7)
    with torch.inference_mode():
        feats = model.pre_dropout(x)
        assert (folded_head(model, feats.shape[1], x.device) is not None) == affine
        for i, image_id in enumerate(ids):
            keep = torch.from_numpy(reference_keep(image_generator(7, image_id, x.device), 10, feats.shape[1]))
            emb = F.normalize(model.head(feats[i] * keep * 2), dim=1).numpy().astype(np.float64)
            d = [np.linalg.norm(emb[a] - emb[b]) for a in range(10) for b in range(a + 1, 10)]
            assert q[i] == pytest.approx(2 / (1 + np.exp(np.mean(d))), rel=1e-5)


def test_folded_head_is_the_head(sface, obama):
    x = to_tensor(obama["pixels"].values[:3])
    with torch.inference_mode():
        feats = sface.pre_dropout(x)
        weight, bias = folded_head(sface, feats.shape[1], x.device)
        assert weight.shape == (1024 * 49, 128)
        np.testing.assert_allclose(torch.addmm(bias, feats, weight), sface.head(feats), rtol=1e-4, atol=1e-4)
        assert folded_head(sface, feats.shape[1], x.device)[0] is weight  # computed once per model


@pytest.mark.parametrize("p", [0.5, 0.25, 0.3])
def test_dropout_masks_keep_the_right_share(p):
    n = 50_000  # not a multiple of 64: rows are padded to whole words
    draw = DropoutMasks(100, n, p, torch.device("cpu"))
    assert draw.padded == 50_048
    keep = draw.fill(torch.empty(100, draw.padded), torch.Generator().manual_seed(0))[:, :n]
    np.testing.assert_allclose(keep.unique(), [0.0, 1 / (1 - p)], rtol=1e-6)
    kept = (keep > 0).float()
    assert kept.mean().item() == pytest.approx(1 - p, abs=3e-3)
    # every bit of a random word is used: no position within the 64 is stuck
    by_position = kept[:, : n // 64 * 64].reshape(100, -1, 64).mean(dim=(0, 1))
    assert by_position.min().item() > 1 - p - 0.02 and by_position.max().item() < 1 - p + 0.02
    # independent rows and columns: no visible correlation between neighbours
    assert abs(np.corrcoef(kept[:, :-1].flatten(), kept[:, 1:].flatten())[0, 1]) < 0.01
    assert abs(np.corrcoef(kept[:-1].flatten(), kept[1:].flatten())[0, 1]) < 0.01


def test_serfiq_is_seeded_and_batch_independent(sface, obama):
    ids = obama["image"].values.tolist()[:4]
    x = to_tensor(obama["pixels"].sel(image=ids).values)
    whole = serfiq(sface, x, ids, T=20, seed=0)
    np.testing.assert_array_equal(whole, serfiq(sface, x, ids, T=20, seed=0))
    np.testing.assert_allclose(whole[2:], serfiq(sface, x[2:], ids[2:], T=20, seed=0), rtol=1e-6)
    assert not np.allclose(whole, serfiq(sface, x, ids, T=20, seed=1))


def test_serfiq_lower_for_heavy_blur(sface, demo):
    faces = demo[0]
    ds = score(faces, "serfiq", sface, torch.device("cpu"), {"T": 100, "dropout": 0.5, "seed": 0}, batch_size=4)
    assert ds["quality"].dims == ("image",) and np.all(np.isfinite(ds["quality"]))
    assert ds.attrs["higher_is_better_raw"] == 1
    for source in ["obama", "obama2", "obama3", "biden", "astronaut"]:
        original = ds["quality"].sel(image=f"{source}/original/0").item()
        blurred = ds["quality"].sel(image=f"{source}/gaussian_blur/3").item()
        assert blurred < original, source
    # severity ranks against quality overall: the ladder is a ground truth
    sev = faces["severity"].values
    rho = np.corrcoef(np.argsort(np.argsort(sev)), np.argsort(np.argsort(ds["quality"].values)))[0, 1]
    assert rho < -0.2

"""SER-FIQ on real demo faces: the formula, seeding, and the direction it must have."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amva.models import to_tensor
from amva.quality import score
from amva.quality.serfiq import DropoutMask, image_generator, serfiq


@pytest.fixture(scope="module")
def obama(demo):
    faces = demo[0]
    sel = faces.sel(image=(faces["source"] == "obama") & faces["degradation"].isin(["none", "gaussian_blur"]))
    return sel


def test_serfiq_equals_formula_with_same_masks(sface, obama):
    ids = obama["image"].values.tolist()[:2]
    x = to_tensor(obama["pixels"].sel(image=ids).values)
    q = serfiq(sface, x, ids, T=10, dropout=0.5, seed=7)
    with torch.inference_mode():
        feats = sface.pre_dropout(x)
        for i, image_id in enumerate(ids):
            gen = image_generator(7, image_id, x.device)
            keep = torch.empty(10, feats.shape[1], dtype=torch.uint8).random_(0, 256, generator=gen) >= 128
            emb = F.normalize(sface.head(feats[i] * keep * 2), dim=1).numpy().astype(np.float64)
            d = [np.linalg.norm(emb[a] - emb[b]) for a in range(10) for b in range(a + 1, 10)]
            assert q[i] == pytest.approx(2 / (1 + np.exp(np.mean(d))), rel=1e-5)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.3])
def test_dropout_masks_keep_the_right_share(p):
    draw = DropoutMask((100, 50_000), p, torch.device("cpu"))
    keep = draw(torch.Generator().manual_seed(0)).float()
    assert keep.mean().item() == pytest.approx(1 - p, abs=3e-3)
    assert draw.buf.dtype == (torch.float32 if p == 0.3 else torch.uint8)
    # independent rows and columns: no visible correlation between neighbours
    assert abs(np.corrcoef(keep[:, :-1].flatten(), keep[:, 1:].flatten())[0, 1]) < 0.01


def test_serfiq_is_seeded_and_batch_independent(sface, obama):
    ids = obama["image"].values.tolist()[:4]
    x = to_tensor(obama["pixels"].sel(image=ids).values)
    whole = serfiq(sface, x, ids, T=20, seed=0)
    np.testing.assert_array_equal(whole, serfiq(sface, x, ids, T=20, seed=0))
    np.testing.assert_allclose(whole[2:], serfiq(sface, x[2:], ids[2:], T=20, seed=0), rtol=1e-6)
    assert not np.allclose(whole, serfiq(sface, x, ids, T=20, seed=1))


def test_serfiq_lower_for_heavy_blur(sface, demo):
    faces = demo[0]
    ds = score(faces, "serfiq", sface, torch.device("cpu"), {"T": 100, "dropout": 0.5, "seed": 0})
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

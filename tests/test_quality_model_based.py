"""Model-based FIQA methods on real demo faces with the real SFace.

embedding norm, flip consistency, FaceQAN and GraFIQs: each against an independent
recomputation, plus the direction each has on the demo ladder (originals vs heavy blur),
printed (run with ``-s``) and asserted only where it is robust.
"""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amva.models import to_tensor
from amva.quality import embedding_norm as en_mod
from amva.quality import faceqan as fq_mod
from amva.quality import flip as flip_mod
from amva.quality import grafiqs as gq_mod
from amva.quality.embedding_norm import embedding_norm
from amva.quality.faceqan import PIXEL_RANGE, faceqan, faceqan_parts, faceqan_score
from amva.quality.flip import flip_consistency
from amva.quality.grafiqs import grafiqs, grafiqs_loss_and_gradient
from amva.quality.serfiq import image_generator

SOURCES = ["obama", "obama2", "obama3", "biden", "astronaut"]
# FaceQAN is l x (forward + backward) of k copies per image: keep it small on CPU
FQ = {"k": 2, "l": 2, "eps": 0.001, "seed": 0}


@pytest.fixture(scope="module")
def ladder(demo):
    """Originals and gaussian_blur/3 of every demo source (10 images), as model input."""
    faces = demo[0]
    ids = [f"{s}/original/0" for s in SOURCES] + [f"{s}/gaussian_blur/3" for s in SOURCES]
    sel = faces.sel(image=ids)
    return ids, to_tensor(sel["pixels"].values), sel["severity"].values


@pytest.fixture(scope="module")
def raw_scores(sface, ladder):
    """Raw score of every method on the ladder, computed once."""
    ids, x, _ = ladder
    sims, sym = faceqan_parts(sface, x, ids, **FQ)
    return {
        "embedding_norm": embedding_norm(sface, x, ids),
        "flip_consistency": flip_consistency(sface, x, ids),
        "faceqan": faceqan_score(sims, sym, p=5),
        "grafiqs": grafiqs(sface, x, ids),
        "_faceqan_parts": (sims, sym),
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(pd.Series(a).rank(), pd.Series(b).rank())[0, 1])


# ---------------------------------------------------------------- embedding norm and flip


def test_embedding_norm_is_the_norm_of_the_raw_embedding(sface, ladder, raw_scores):
    _, x, _ = ladder
    with torch.no_grad():
        expected = np.linalg.norm(sface(x).numpy().astype(np.float64), axis=1)
    got = raw_scores["embedding_norm"]
    assert got.dtype == np.float64 and got.shape == (len(x),)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert en_mod.HIGHER_IS_BETTER is True


def test_flip_consistency_is_one_for_a_mirror_symmetric_face(sface, ladder, raw_scores):
    _, x, _ = ladder
    sym = x[:1].clone()
    half = sym.shape[-1] // 2
    sym[..., half:] = sym[..., :half].flip(-1)  # mirror the left half onto the right
    assert flip_consistency(sface, sym, ["sym"])[0] > 0.999
    real = raw_scores["flip_consistency"][:5]
    assert np.all(real < 0.999) and np.all(real > 0.5), real
    with torch.no_grad():
        a, b = sface(x[:5]), sface(torch.flip(x[:5], dims=[3]))
    np.testing.assert_allclose(real, F.cosine_similarity(a, b).numpy(), rtol=1e-5)
    assert flip_mod.HIGHER_IS_BETTER is True


# ---------------------------------------------------------------- FaceQAN


def faceqan_reference(model, image, image_id, k, l, eps, seed, p):  # noqa: E741
    """One image, written the way the official loop is (CosineEmbeddingLoss, .grad, np.mean/std)."""
    eps_px = eps * PIXEL_RANGE
    gen = image_generator(seed, image_id, image.device)
    noise = torch.empty((k, *image.shape)).uniform_(-eps_px, eps_px, generator=gen)
    batch = torch.clamp(image.unsqueeze(0) + noise, 0, 255)
    with torch.no_grad():
        base = model(image.unsqueeze(0))
    loss_fn, sims = nn.CosineEmbeddingLoss(), []
    for _ in range(l):
        batch = batch.detach().requires_grad_(True)
        with torch.enable_grad():
            embs = model(batch)
            loss_fn(base, embs, torch.ones(1)).backward()
        sims.append(F.cosine_similarity(base, embs.detach()).numpy())
        batch = torch.clamp(batch + eps_px * batch.grad.sign(), 0, 255)
    with torch.no_grad():
        e = model(torch.stack([image, image.flip(-1)]))
    sf = F.cosine_similarity(e[:1], e[1:]).item()
    s = np.asarray(sims, dtype=np.float64)
    q = (((1 + np.mean(s)) / 2) * np.clip(1 - np.std(s), 0, 1) * sf) ** p
    return q, s, sf


def test_faceqan_matches_an_independent_reimplementation(raw_scores, sface, ladder):
    ids, x, _ = ladder
    q_ref, s_ref, sf_ref = faceqan_reference(sface, x[2], ids[2], p=1, **FQ)
    # image 2 was scored inside the 10-image batch of the fixture: batching does not matter
    sims, sym = raw_scores["_faceqan_parts"]
    assert sims.shape == (10, FQ["l"], FQ["k"]) and sims.dtype == np.float64
    np.testing.assert_allclose(sims[2], s_ref, rtol=1e-5)
    assert sym[2] == pytest.approx(sf_ref, rel=1e-5)
    assert faceqan_score(sims[2:3], sym[2:3], p=1)[0] == pytest.approx(q_ref, rel=1e-5)
    # the product formula from the returned ingredients, and p as an exponent
    m, sd = sims[2].mean(), sims[2].std()
    expected = (1 + m) / 2 * min(max(1 - sd, 0), 1) * sym[2]
    assert faceqan_score(sims[2:3], sym[2:3], p=1)[0] == pytest.approx(expected)
    assert raw_scores["faceqan"][2] == pytest.approx(expected**5)
    # the attack does push the embedding away: similarity drops after the first BIM step
    assert np.all(sims[:, -1].mean(axis=1) < sims[:, 0].mean(axis=1))


def test_faceqan_is_seeded_and_in_unit_range(sface, ladder, raw_scores):
    ids, x, _ = ladder
    cheap = {**FQ, "l": 1}
    one = faceqan(sface, x[:1], ids[:1], p=1, **cheap)
    assert one.dtype == np.float64 and one.shape == (1,)
    sims, sym = faceqan_parts(sface, x[:1], ids[:1], **cheap)
    np.testing.assert_array_equal(one, faceqan_score(sims, sym, p=1))
    np.testing.assert_allclose(faceqan_parts(sface, x[:1], ids[:1], chunk=1, **cheap)[0], sims, rtol=1e-5)
    other = faceqan_parts(sface, x[:1], ids[:1], **{**cheap, "seed": 1})[0]
    assert not np.array_equal(other, sims)  # the noise, not the image, differs: tiny but nonzero
    q = raw_scores["faceqan"]
    assert np.all((q >= 0) & (q <= 1)), q
    assert fq_mod.HIGHER_IS_BETTER is True
    with pytest.raises(ValueError, match="k >= 2"):
        faceqan(sface, x[:1], ids[:1], k=1)


# ---------------------------------------------------------------- GraFIQs


def bn_forward_hooks(model) -> int:
    return sum(len(m._forward_hooks) for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_grafiqs_leaves_no_hooks_and_no_parameter_gradients(sface, ladder, raw_scores):
    ids, x, _ = ladder
    before = bn_forward_hooks(sface)
    two = grafiqs(sface, x[6:8], ids[6:8])
    assert bn_forward_hooks(sface) == before
    # statistics are per image: the scores do not depend on the batch they came in
    np.testing.assert_allclose(two, raw_scores["grafiqs"][6:8], rtol=1e-4)
    with pytest.raises(RuntimeError):  # a failing forward still removes the hooks
        grafiqs(sface, x[:1, :, :50], ids[:1])
    assert bn_forward_hooks(sface) == before
    assert all(p.grad is None and not p.requires_grad for p in sface.parameters())
    assert gq_mod.HIGHER_IS_BETTER is False


def test_grafiqs_loss_and_score_by_a_direct_pass(sface, ladder, raw_scores):
    """L from BN inputs collected by walking the SFace blocks by hand, then its gradient."""
    _, x, _ = ladder
    z = sface.normalize(x[3:4]).detach().requires_grad_(True)  # the normalised input, as officially
    with torch.enable_grad():
        h, terms = z, []
        for block in sface.body:
            c = block.conv(h)
            terms.append((block.bn, c))
            h = block.act(block.bn(c))
        terms.append((sface.bn1, h))
        losses = [
            F.mse_loss(c.mean(dim=(0, 2, 3)), bn.running_mean)
            + F.mse_loss(c.var(dim=(0, 2, 3), unbiased=False), bn.running_var)
            for bn, c in terms
        ]
        loss = torch.stack(losses).mean()
        (gz,) = torch.autograd.grad(loss, z)
    assert len(terms) == 28
    got_loss, _ = grafiqs_loss_and_gradient(sface, x[3:4])
    assert got_loss.item() == pytest.approx(loss.item(), rel=1e-4)
    assert raw_scores["grafiqs"][3] == pytest.approx(gz.abs().sum().item(), rel=1e-4)


# ---------------------------------------------------------------- directions on the demo


@pytest.mark.parametrize("name", ["embedding_norm", "flip_consistency", "faceqan", "grafiqs"])
def test_direction_originals_vs_heavy_blur(name, ladder, raw_scores):
    _, _, severity = ladder
    higher = {"embedding_norm": en_mod, "flip_consistency": flip_mod, "faceqan": fq_mod, "grafiqs": gq_mod}[name]
    raw = raw_scores[name]
    quality = raw if higher.HIGHER_IS_BETTER else -raw
    orig, blur = quality[:5], quality[5:]
    agree = int(np.sum(orig > blur))
    rho = spearman(quality, severity)
    print(f"\n{name}: originals > gaussian_blur/3 in {agree}/5 sources; spearman(quality, severity) = {rho:+.2f}")
    assert np.all(np.isfinite(raw))
    if name == "grafiqs":
        return  # on SFace, blur often *lowers* the BN-mismatch gradient: reported, not asserted
    assert orig.mean() > blur.mean()
    if name != "faceqan":  # FaceQAN here runs with k=2, l=2 only
        assert agree == 5

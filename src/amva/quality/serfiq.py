"""SER-FIQ (Terhörst et al., CVPR 2020): quality as robustness of stochastic embeddings.

The backbone runs once per image; only the head is sampled ``T`` times with dropout on
the flattened last-stage features, as in the official implementation. Quality is
``2 / (1 + exp(mean pairwise Euclidean distance))`` of the L2-normalised embeddings.

Cost: the heads of SFace and iResNet (Linear → BatchNorm1d, eval mode) are affine, so
they fold into one ``(F, D)`` matrix and the ``T`` passes of an image are one
``(T, F) @ (F, D)`` GEMM; the dropout masks are drawn as random bits (see
:class:`DropoutMasks`). That GEMM is the floor of the exact computation: for SFace
``2·T·F·D = 1.28`` GFLOP per image, 1.12× the FLOPs of one backbone forward.
"""

from __future__ import annotations

import weakref
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from amva.models import FaceModel
from amva.options import Option
from amva.quality.method import SEED, Method

HIGHER_IS_BETTER: bool = True

Folded = tuple[torch.Tensor, torch.Tensor]

_FOLDED: weakref.WeakKeyDictionary[FaceModel, tuple[torch.device, int, Folded | None]] = weakref.WeakKeyDictionary()


def image_generator(seed: int, image_id: str, device: torch.device) -> torch.Generator:
    """A generator per image, so a score does not depend on batching or on other images."""
    entropy = np.random.SeedSequence([seed, zlib.crc32(image_id.encode())]).generate_state(1)[0]
    return torch.Generator(device=device).manual_seed(int(entropy))


def folded_head(model: FaceModel, n_features: int, device: torch.device) -> Folded | None:
    """``(W (F, D), b (D,))`` with ``model.head(f) == f @ W + b``, or None if the head is not affine.

    An eval-mode head of Linear and BatchNorm1d layers (SFace, iResNet, dlib) is affine,
    so its Jacobian (one backward of ``D`` rows) is the folded weight. That costs about
    one GEMM of the head, hence the cache per model (models are frozen at inference).
    """
    cached = _FOLDED.get(model)
    if cached is None or cached[:2] != (device, n_features):
        cached = (device, n_features, _fold(model, n_features, device))
        _FOLDED[model] = cached
    return cached[2]


def _fold(model: FaceModel, n_features: int, device: torch.device) -> Folded | None:
    with torch.inference_mode(False), torch.enable_grad():
        bias = model.head(torch.zeros(1, n_features, device=device)).detach()[0]
        probe = torch.zeros(len(bias), n_features, device=device, requires_grad=True)
        (jac,) = torch.autograd.grad(model.head(probe), probe, torch.eye(len(bias), device=device))
    weight = jac.t().contiguous()
    with torch.inference_mode():  # affine iff it reproduces the head away from 0
        x = torch.randn(2, n_features, device=device, generator=torch.Generator(device=device).manual_seed(0))
        expected = model.head(x)
        tol = 1e-4 * expected.abs().max().item()
        close = torch.allclose(torch.addmm(bias, x, weight), expected, rtol=1e-4, atol=tol)
    return (weight, bias) if close else None


class DropoutMasks:
    """Scaled keep-masks ``keep / (1 - p)`` of ``T`` passes over ``F`` features: exact Bernoulli draws.

    Drawing dominated SER-FIQ on a CPU (5 M draws per image at T = 100, F = 50,176).
    For p = 0.5 (the paper's rate) every random bit is one exact draw: 64 mask entries
    per random int64 word, unpacked through a 256 × 8 table of bit patterns (bit ``b``
    of byte ``i`` of a row is feature ``8i + b``). Other rates draw one uniform float
    per entry (keep iff ``u >= p``). Rows are padded to whole words: ``padded`` columns.
    """

    def __init__(self, T: int, n_features: int, p: float, device: torch.device) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"SER-FIQ dropout = {p}: must be in [0, 1)")
        self.p, self.T, self.padded = p, T, -(-n_features // 64) * 64
        if p == 0.5:
            self.words = torch.empty(T, self.padded // 64, dtype=torch.int64, device=device)
            self.index = torch.empty(T * self.padded // 8, dtype=torch.int32, device=device)
            shifts = torch.arange(8, device=device)
            self.table = ((torch.arange(256, device=device)[:, None] >> shifts) & 1).float() / (1 - p)

    def fill(self, out: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Draw one image's masks into the contiguous ``(T, padded)`` float tensor ``out``."""
        if self.p == 0.5:
            self.words.random_(-(2**63), None, generator=gen)  # from = int64 min, no upper bound: all 64 bits
            self.index.copy_(self.words.view(torch.uint8).view(-1))
            return torch.index_select(self.table, 0, self.index, out=out.view(-1, 8)).view(out.shape)
        keep = out.uniform_(generator=gen) >= self.p
        return out.copy_(keep).div_(1 - self.p)


GROUP = 4
"""Images per head GEMM: ``(4T, F) @ (F, D)`` is ~20% cheaper per image than ``(T, F) @ (F, D)``
on the 2-core reference CPU; the masked rows take 80 MB at T = 100 for SFace."""


def serfiq_from_features(
    model: FaceModel, features: torch.Tensor, generators: list[torch.Generator], T: int = 100, p: float = 0.5
) -> torch.Tensor:
    """SER-FIQ of ``(N, F)`` pre-dropout features: the ``T`` masked rows of ``GROUP`` images, one head product.

    The product is a GEMM with the folded head, or ``model.head`` where the head is not
    affine. Each image's masks come from its own generator, so the score does not depend
    on the other images of the group.
    """
    n, n_features = features.shape
    folded = folded_head(model, n_features, features.device)
    draw = DropoutMasks(T, n_features, p, features.device)
    rows = torch.empty(min(GROUP, n), T, draw.padded, device=features.device)
    out = torch.empty(n, device=features.device)
    for a in range(0, n, GROUP):
        m = min(GROUP, n - a)
        for j in range(m):
            draw.fill(rows[j], generators[a + j])[:, :n_features].mul_(features[a + j])
        samples = rows[:m].view(m * T, -1)[:, :n_features]
        emb = torch.addmm(folded[1], samples, folded[0]) if folded else model.head(samples)
        emb = F.normalize(emb, dim=1).view(m, T, -1)
        for j in range(m):
            out[a + j] = F.pdist(emb[j]).mean()
    return 2.0 / (1.0 + torch.exp(out))


@torch.inference_mode()
def serfiq(
    model: FaceModel,
    images: torch.Tensor,
    ids: list[str],
    T: int = 100,
    dropout: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """SER-FIQ quality (higher = better) of a batch of model-ready images."""
    if T < 2:
        raise ValueError(f"SER-FIQ T = {T}: needs at least 2 stochastic passes")
    gens = [image_generator(seed, i, images.device) for i in ids]
    return serfiq_from_features(model, model.pre_dropout(images), gens, T, dropout).cpu().numpy()


RECORD = Method(
    name="serfiq",
    kind="model",
    higher_is_better=HIGHER_IS_BETTER,
    fn=serfiq,
    options={
        "T": Option(int, 100, "stochastic passes of the head (at least 2)"),
        "dropout": Option(float, 0.5, "dropout rate of the passes, in [0, 1)"),
        "seed": SEED,
    },
)

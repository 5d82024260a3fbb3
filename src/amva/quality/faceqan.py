"""FaceQAN (Babnik et al., IJCB 2022): quality as robustness to adversarial noise.

Why: a high-quality face sits deep inside its identity region, so small adversarial
perturbations barely move its embedding; a poor one is pushed away easily. A head-pose
term (similarity to the mirrored face) is multiplied in.

What, following the official code (LSIbabnikz/FaceQAN, ``src/util.py``,
``src/bim_attack.py``, ``src/symmetry.py``):

* ``k`` copies of the image with uniform noise ``U(-ε, ε)``; then ``l`` iterations of
  BIM (iterative FGSM) that *maximise* ``1 - cos(f(x), f(x̃))``, step ``x̃ += ε·sign(∇)``
  with no projection back onto an ε-ball (after ``l`` steps a pixel may have moved by
  up to ``(l + 1)·ε``).
* In every iteration the similarity ``cos(f(x), f(x̃))`` is taken from the same forward
  pass that gives the gradient, i.e. *before* that iteration's step (as the official
  loop does): ``S`` holds ``l × k`` values, the first row for the noise-only copies.
* ``s_f = cos(f(x), f(mirror x))``;
  ``q = [(1 + mean S)/2 · clip(1 - std S, 0, 1) · s_f]^p`` with the population std
  over all ``l·k`` values (``np.std``).

Scaling of ε: the official images are ``ToTensor()`` tensors in [0, 1] (the [-1, 1]
normalisation is a layer *inside* the model), so ε is in units of 1/255 of the pixel
range. Our inputs are in [0, 255], hence ``ε_px = 255 · ε`` (0.255 grey levels for the
default ε = 0.001). The official code clamps to [-1, 1] in its [0, 1] space (only the
upper bound can bind); we clamp to the valid pixel range [0, 255].

Batched over the ``k`` copies and over images (samples are independent in an eval-mode
network, and the loss's batch mean only scales each copy's gradient by a positive
factor, so ``sign(∇)`` is unchanged). Noise is drawn from a generator per image
(:func:`amva.quality.serfiq.image_generator`), so scores do not depend on batching.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from amva.models import FaceModel
from amva.quality.flip import flip_similarity
from amva.quality.serfiq import image_generator

HIGHER_IS_BETTER: bool = True

PIXEL_RANGE = 255.0
"""ε of the paper is in [0, 1] image units; multiply by this for [0, 255] inputs."""


def faceqan_score(similarities: np.ndarray, symmetry: np.ndarray, p: float = 5) -> np.ndarray:
    """The FaceQAN aggregation of ``(N, l, k)`` adversarial similarities and ``(N,)`` ``s_f``."""
    s = np.asarray(similarities, dtype=np.float64).reshape(len(similarities), -1)
    base = (1.0 + s.mean(axis=1)) / 2.0 * np.clip(1.0 - s.std(axis=1), 0.0, 1.0)
    return (base * np.asarray(symmetry, dtype=np.float64)) ** p


def _attack(
    model: FaceModel, x: torch.Tensor, gens: list[torch.Generator], k: int, steps: int, eps_px: float
) -> torch.Tensor:
    """``(m, l, k)`` BIM similarities of a chunk of ``m`` images (gradient mode on)."""
    m = len(x)
    base = model(x).detach().repeat_interleave(k, dim=0)
    noise = torch.empty((m, k, *x.shape[1:]), device=x.device, dtype=x.dtype)
    for i, gen in enumerate(gens):
        noise[i].uniform_(-eps_px, eps_px, generator=gen)
    adv = (x.unsqueeze(1) + noise).clamp_(0.0, PIXEL_RANGE).flatten(0, 1)
    sims = []
    for _ in range(steps):
        adv.requires_grad_(True)
        cos = F.cosine_similarity(base, model(adv), dim=1)
        (grad,) = torch.autograd.grad((1.0 - cos).sum(), adv)
        adv = (adv.detach() + eps_px * grad.sign()).clamp_(0.0, PIXEL_RANGE)
        sims.append(cos.detach().view(m, k))
    return torch.stack(sims, dim=1)


def faceqan_parts(
    model: FaceModel,
    images: torch.Tensor,
    ids: list[str],
    k: int = 10,
    l: int = 5,  # noqa: E741 - the paper's name
    eps: float = 0.001,
    seed: int = 0,
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """The two ingredients: ``S`` ``(N, l, k)`` and ``s_f`` ``(N,)``, both float64.

    ``chunk`` bounds the attacked batch (``images × k`` copies) for memory; it does not
    change the result beyond float rounding.
    """
    if k < 2 or l < 1:
        raise ValueError(f"FaceQAN needs k >= 2 noisy copies and l >= 1 BIM steps, got k={k}, l={l}")
    if len(ids) != len(images):
        raise ValueError(f"{len(ids)} ids for {len(images)} images")
    gens = [image_generator(seed, i, images.device) for i in ids]
    per = max(1, chunk // k)
    with torch.inference_mode(False), torch.enable_grad():
        x = images.detach().clone()  # a normal tensor even if the caller is in inference mode
        eps_px = eps * PIXEL_RANGE
        sims = [_attack(model, x[a : a + per], gens[a : a + per], k, l, eps_px) for a in range(0, len(x), per)]
        with torch.no_grad():
            sym = flip_similarity(model, x)
    return torch.cat(sims).double().cpu().numpy(), sym.double().cpu().numpy()


def faceqan(
    model: FaceModel,
    images: torch.Tensor,
    ids: list[str],
    k: int = 10,
    l: int = 5,  # noqa: E741 - the paper's name
    eps: float = 0.001,
    p: float = 5,
    seed: int = 0,
    chunk: int = 64,
) -> np.ndarray:
    """FaceQAN quality (higher = better), in [0, 1] unless the mirror similarity is negative."""
    sims, sym = faceqan_parts(model, images, ids, k=k, l=l, eps=eps, seed=seed, chunk=chunk)
    return faceqan_score(sims, sym, p)

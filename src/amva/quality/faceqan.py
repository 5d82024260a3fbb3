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
Cost: ``l`` forward+backward passes per copy, ``k·l = 50`` per image at the defaults,
plus two forwards. The attack runs on a copy of the model with BatchNorm folded into the
convolutions (:func:`amva.models.fuse.fused`): the same function up to float rounding
(scores move by ~1e-4), ~20% less time on a CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from amva.models import FaceModel
from amva.models.fuse import fused
from amva.options import Option
from amva.quality.flip import flip_similarity
from amva.quality.method import SEED, Method
from amva.quality.serfiq import image_generator

HIGHER_IS_BETTER: bool = True

PIXEL_RANGE = 255.0
"""ε of the paper is in [0, 1] image units; multiply by this for [0, 255] inputs."""


def faceqan_score(similarities: np.ndarray, symmetry: np.ndarray, p: float = 5) -> np.ndarray:
    """The FaceQAN aggregation of ``(N, l, k)`` adversarial similarities and ``(N,)`` ``s_f``."""
    s = np.asarray(similarities, dtype=np.float64).reshape(len(similarities), -1)
    base = (1.0 + s.mean(axis=1)) / 2.0 * np.clip(1.0 - s.std(axis=1), 0.0, 1.0)
    return (base * np.asarray(symmetry, dtype=np.float64)) ** p


def _attack(model: FaceModel, adv: torch.Tensor, base: torch.Tensor, steps: int, eps_px: float) -> torch.Tensor:
    """``(m, l)`` BIM similarities of ``m`` noisy copies to their images' embeddings ``base`` (gradient mode on)."""
    sims = []
    for _ in range(steps):
        adv.requires_grad_(True)
        cos = F.cosine_similarity(base, model(adv), dim=1)
        (grad,) = torch.autograd.grad((1.0 - cos).sum(), adv)
        adv = (adv.detach() + eps_px * grad.sign()).clamp_(0.0, PIXEL_RANGE)
        sims.append(cos.detach())
    return torch.stack(sims, dim=1)


def faceqan_parts(
    model: FaceModel,
    images: torch.Tensor,
    ids: list[str],
    k: int = 10,
    l: int = 5,  # noqa: E741 - the paper's name
    eps: float = 0.001,
    seed: int = 0,
    chunk: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """The two ingredients: ``S`` ``(N, l, k)`` and ``s_f`` ``(N,)``, both float64.

    The ``N·k`` noisy copies are attacked ``chunk`` at a time, whatever image they come
    from: a copy's attack depends on nothing else, so ``chunk`` changes the result only by
    float rounding. It is a speed knob: on CPUs small batches are fastest per copy
    (8 on the 2-core reference machine, see docs/benchmarks.md); raise it on a GPU.
    """
    if k < 2 or l < 1:
        raise ValueError(f"FaceQAN needs k >= 2 noisy copies and l >= 1 BIM steps, got k={k}, l={l}")
    if len(ids) != len(images):
        raise ValueError(f"{len(ids)} ids for {len(images)} images")
    eps_px = eps * PIXEL_RANGE
    model = fused(model)
    with torch.inference_mode(False), torch.enable_grad():
        x = images.detach().clone()  # a normal tensor even if the caller is in inference mode
        noise = torch.empty((len(x), k, *x.shape[1:]), device=x.device, dtype=x.dtype)
        for i, image_id in enumerate(ids):
            noise[i].uniform_(-eps_px, eps_px, generator=image_generator(seed, image_id, x.device))
        copies = (x.unsqueeze(1) + noise).clamp_(0.0, PIXEL_RANGE).flatten(0, 1)
        with torch.no_grad():
            base = model(x).repeat_interleave(k, dim=0)
            sym = flip_similarity(model, x)
        parts = [
            _attack(model, copies[a : a + chunk], base[a : a + chunk], l, eps_px) for a in range(0, len(x) * k, chunk)
        ]
        sims = torch.cat(parts)
    return sims.view(len(x), k, l).transpose(1, 2).double().cpu().numpy(), sym.double().cpu().numpy()


def faceqan(
    model: FaceModel,
    images: torch.Tensor,
    ids: list[str],
    k: int = 10,
    l: int = 5,  # noqa: E741 - the paper's name
    eps: float = 0.001,
    p: float = 5,
    seed: int = 0,
    chunk: int = 8,
) -> np.ndarray:
    """FaceQAN quality (higher = better), in [0, 1] unless the mirror similarity is negative."""
    sims, sym = faceqan_parts(model, images, ids, k=k, l=l, eps=eps, seed=seed, chunk=chunk)
    return faceqan_score(sims, sym, p)


RECORD = Method(
    name="faceqan",
    kind="model",
    higher_is_better=HIGHER_IS_BETTER,
    fn=faceqan,
    options={
        "k": Option(int, 10, "noisy copies per image (at least 2)"),
        "l": Option(int, 5, "BIM attack steps per copy (at least 1)"),
        "eps": Option(float, 0.001, "noise and attack step bound, on [0, 1] pixels"),
        "p": Option(float, 5, "exponent of the score"),
        "seed": SEED,
        "chunk": Option(int, 8, "noisy copies per forward+backward: a speed knob (raise it on a GPU)"),
    },
)

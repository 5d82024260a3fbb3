"""GraFIQs (Kolf et al., CVPRW 2024): quality from gradients of a BN-statistics mismatch.

Why: a face like the FR training data produces per-layer activation statistics close to
the BatchNorm running statistics; an unusual (degraded) face does not, and the mismatch
has a large gradient with respect to the input.

What, following the official code (jankolf/GraFIQs, ``backbones/bn.py`` and
``extract_grafiqs.py``): forward hooks on every ``BatchNorm2d`` record the mean and
*biased* variance over (H, W) of the layer's **input** for the image;
``L = mean over layers of [MSE(μ_l, running_mean_l) + MSE(σ²_l, running_var_l)]``
(MSE averaged over channels); the score is ``Σ |∂L/∂z|`` over all pixels and channels,
where ``z`` is the model's **normalised** input (the official "image" score uses the
[-1, 1] tensor; for SFace ``z = (x - 127.5) / 128``, so the score is
``128 · Σ |∂L/∂x|`` of the [0, 255] image).

The official code runs one image per batch so that the statistics are per image. Here a
batch is one forward/backward, but the statistics are taken per sample (over H, W only)
and the per-image losses are summed: in an eval-mode network samples do not interact,
so ``∂(Σ_j L_j)/∂x_i = ∂L_i/∂x_i`` — the batch-of-one result. Parameters are never
differentiated (``torch.autograd.grad`` w.r.t. the input only) and the hooks are removed
before returning. ``HIGHER_IS_BETTER`` is the direction measured on the demo faces.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from amva.models import FaceModel
from amva.options import Option
from amva.quality.method import Method

HIGHER_IS_BETTER: bool = False


def batchnorm2d_layers(model: FaceModel) -> list[nn.BatchNorm2d]:
    """Every ``BatchNorm2d`` of the model, in module order."""
    if not isinstance(model, nn.Module):
        raise TypeError("GraFIQs needs a torch nn.Module to hook its BatchNorm2d layers")
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def bn_statistics_loss(stats: list[tuple[nn.BatchNorm2d, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``(N,)`` per-image L from ``(layer, mean (N, C), biased var (N, C))`` triples."""
    per_layer = [
        (mean - bn.running_mean).pow(2).mean(dim=1) + (var - bn.running_var).pow(2).mean(dim=1)
        for bn, mean, var in stats
    ]
    return torch.stack(per_layer).mean(dim=0)


def grafiqs_loss_and_gradient(model: FaceModel, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``L`` ``(N,)`` and ``∂L/∂x`` ``(N, 3, H, W)`` w.r.t. the raw [0, 255] input."""
    layers = batchnorm2d_layers(model)
    if not layers:
        raise ValueError("GraFIQs: the model has no BatchNorm2d layer")
    stats: list[tuple[nn.BatchNorm2d, torch.Tensor, torch.Tensor]] = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        var, mean = torch.var_mean(inputs[0], dim=(2, 3), unbiased=False)
        stats.append((module, mean, var))

    handles = [bn.register_forward_hook(record) for bn in layers]
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = images.detach().clone().requires_grad_(True)
            model(x)
            loss = bn_statistics_loss(stats)
            (grad,) = torch.autograd.grad(loss.sum(), x)
    finally:
        for handle in handles:
            handle.remove()
        stats.clear()
    return loss.detach(), grad


def grafiqs(model: FaceModel, images: torch.Tensor, ids: list[str], chunk: int = 16) -> np.ndarray:
    """GraFIQs score ``Σ|∂L/∂z|`` per image (raw: larger = LOWER quality, see module doc).

    ``chunk`` images go through one forward/backward; scores do not depend on it.
    """
    del ids  # deterministic: nothing is seeded per image
    scale = float(getattr(model, "input_scale", 1.0))  # z = (x - mean) * scale → ∂L/∂z = ∂L/∂x / scale
    out = []
    for a in range(0, len(images), chunk):
        _, grad = grafiqs_loss_and_gradient(model, images[a : a + chunk])
        out.append(grad.abs().flatten(1).sum(dim=1).double() / scale)
    return torch.cat(out).cpu().numpy()


RECORD = Method(
    name="grafiqs",
    kind="model",
    higher_is_better=HIGHER_IS_BETTER,
    fn=grafiqs,
    options={"chunk": Option(int, 16, "images per forward/backward: a speed knob (scores do not depend on it)")},
)

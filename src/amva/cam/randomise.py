"""Cascading model randomisation (Adebayo et al., NeurIPS 2018, "Sanity Checks for Saliency Maps").

A map that barely changes when the model's weights are replaced by random ones describes the
image, not the model. The model's *blocks* are its parameterised units in forward order: the
children of the model, with ``Sequential``/``ModuleList``/``ModuleDict`` containers opened (for SFace
``body.conv_1`` … ``body.conv_14``, ``bn1``, ``fc``, ``bn_fc``; for an ONNX model, its weighted
nodes). Registration order is taken as forward order, as it is in every model amva loads.

The cascade re-initialises from the top: first the *head* (every block after the one that
holds the CAM layer: it changes the target, not the activations), then the CAM layer's block,
then the blocks below it one at a time, and finally every block (``all``, the null model).
Each step keeps the blocks the earlier steps randomised, with the same random values: a block's
values are drawn from a seed of its own (the run's seed and the block's name), so they do not
depend on the step. Convolutions and linear layers get He's normal initialiser (fan-in, the
ReLU gain, biases 0), the standard for ReLU-family networks: it keeps the activations' scale
through the depth, where torch's default (uniform, a variance gain of 1/3 per layer) lets a
fully randomised SFace collapse to one embedding for every image (norm 0.03, maps below
1e-6). BatchNorm gets weight 1, bias 0, running mean 0 and variance 1 (identity statistics);
any other layer is reset by its own ``reset_parameters`` (PReLU: slope 0.25).
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from amva.models import he_normal

ALL = "all"
HEAD = "head"


@dataclass(frozen=True)
class Step:
    """One cascade step: its name and every block it randomises (its own and those above it)."""

    name: str
    blocks: tuple[str, ...]


def _has_weights(module: nn.Module) -> bool:
    """Learned parameters; constant buffers (an ONNX graph's mean and scale) are not weights."""
    return any(True for _ in module.parameters())


def blocks(model: nn.Module) -> list[str]:
    """The model's parameterised units in forward order, containers opened."""
    found: list[str] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            if not _has_weights(child):
                continue
            if type(child) in (nn.Sequential, nn.ModuleList, nn.ModuleDict):  # containers, not their subclasses
                walk(f"{prefix}{name}.", child)
            else:
                found.append(f"{prefix}{name}")

    walk("", model)
    return found


def cascade(model: nn.Module, layer: str, depth: int | str) -> tuple[list[Step], str]:
    """The cascade for a CAM on ``layer``: the head, then blocks from the CAM layer's down, then ``all``;
    and a sentence saying how it was built.

    ``depth`` is the number of steps before ``all`` (the head and ``depth - 1`` blocks), or the
    name of the lowest block to randomise on its own (an error lists the valid names). A model whose
    blocks cannot be named (fewer than two, or none holding ``layer``) gets the one step ``all``,
    and the sentence says so.
    """
    units = blocks(model)
    # the block that is the layer or holds it; for a container layer (``layer4``), its last block
    holder = [i for i, unit in enumerate(units) if layer == unit or layer.startswith(unit + ".")]
    holder = holder or [i for i, unit in enumerate(units) if unit.startswith(layer + ".")][-1:]
    if len(units) < 2 or not holder:
        why = "fewer than two parameterised blocks" if len(units) < 2 else f"no block holds layer {layer!r}"
        return [Step(ALL, tuple(units))], f"{type(model).__name__}: {why}, so every weight is randomised at once"
    top = holder[0]
    if isinstance(depth, str):
        below = units[: top + 1][::-1]
        if depth not in below:
            raise ValueError(
                f"trust cascade {depth!r} names no block at or below the CAM layer's; valid: {', '.join(below)}"
            )
        lowest = units.index(depth)
    else:
        lowest = max(top - max(depth - 1, 0) + 1, 0)
    steps = [Step(HEAD, tuple(units[top + 1 :]))] if top + 1 < len(units) else []
    steps += [Step(units[i], tuple(units[i:])) for i in range(top, lowest - 1, -1)]
    steps.append(Step(ALL, tuple(units)))
    note = (
        f"{len(units)} blocks; cascade from the top: "
        + ", ".join(f"{s.name} ({len(s.blocks)} blocks)" for s in steps)
        + f"; the CAM layer {layer!r} lies in block {units[top]!r}"
    )
    return steps, note


def _block_seed(seed: int, name: str) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def randomised(model: nn.Module, step: Step, seed: int) -> nn.Module:
    """A copy of ``model`` with ``step``'s blocks re-initialised (the model itself is untouched)."""
    copied = copy.deepcopy(model)
    modules = dict(copied.named_modules())
    for name in step.blocks:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(_block_seed(seed, name))
            for sub_name, sub in modules[name].named_modules():
                if not any(True for _ in sub.parameters(recurse=False)):
                    continue
                if isinstance(sub, nn.modules.conv._ConvNd | nn.Linear):
                    he_normal(sub.weight, sub.bias)
                    continue
                reset = getattr(sub, "reset_parameters", None)
                if reset is None:
                    where = f"{name}.{sub_name}" if sub_name else name
                    raise TypeError(
                        f"{where} ({type(sub).__name__}) holds weights but has no reset_parameters, so it cannot "
                        "be randomised; give the layer type a reset_parameters"
                    )
                reset()
                if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                    sub.reset_running_stats()  # identity statistics: mean 0, variance 1
    return copied.eval()

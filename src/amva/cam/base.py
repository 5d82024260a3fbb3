"""The shared machinery of class-activation mapping for embedding models.

A CAM method differs from another only in how it weights the channels of the target
layer's activations ``A`` (shape ``(N, C, h, w)``); the map is then
``minmax(ReLU(sum_k w_k A_k))``, upsampled bilinearly to the input size. Subclasses
override :meth:`BaseCAM.weights`; the few methods whose map is not a channel-weighted
sum (LayerCAM's element-wise weights, Eigen-CAM's centred projection) also override
:meth:`BaseCAM.combine`, and still report ``(N, C)`` channel weights.

Each method's facts live on its class, as pytorch-grad-cam keeps them: its config name,
default target, whether it needs gradients, its options and its images per batch. The
registry (:mod:`amva.cam.registry`), the config check, the docs and the tests read them
there, so a method is declared once.

Unlike hook-everything implementations, the hook lives only for the one capturing
pass, gradients flow only from the embedding back to ``A`` (never into the
parameters or earlier layers), and no result is synchronised per image.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from amva.cam.targets import Target
from amva.options import Option

EPS = 1e-7


def resolve_layer(model: nn.Module, layer: str) -> str:
    """``auto`` → the model's declared last conv stage; otherwise check the name exists."""
    if layer == "auto":
        name = getattr(model, "default_cam_layer", None)
        if not name:
            raise ValueError(f"{type(model).__name__} declares no default_cam_layer; name a layer")
        return name
    names = dict(model.named_modules())
    if layer not in names:
        raise ValueError(f"layer {layer!r} not in {type(model).__name__}; e.g. {list(names)[-5:]}")
    return layer


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of ``(N, ...)`` to [0, 1]; a constant map becomes all zero."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(EPS)).view_as(maps)


def upsample(native: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """``(N, h, w)`` maps in [0, 1] to ``size``, bilinearly (pixel centres aligned)."""
    return F.interpolate(native[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r of each pair of maps ``(N, ...)``, in float64; NaN where either map is constant."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    norm = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(norm > 0, (a * b).sum(dim=1) / norm.clamp_min(1e-300), torch.nan)


@dataclass
class CamResult:
    """Maps at input resolution, at the layer's native resolution, and the weights."""

    maps: torch.Tensor  # (N, H, W) in [0, 1]
    native: torch.Tensor  # (N, h, w) in [0, 1]
    weights: torch.Tensor  # (N, C): the channel weights (or the method's per-channel summary)
    baseline_r: torch.Tensor  # (N,): Pearson r of each map with the channel-mean map (NaN for a constant map)
    scores: torch.Tensor | None = None  # (N, C): each channel's target score, for methods that score channels


class BaseCAM(ABC):
    """Capture the target layer, weight its channels, combine.

    ``model`` maps ``(N, 3, H, W)`` inputs in the model's pixel range to embeddings.
    ``target`` may be ``None`` only for methods that use none (Eigen-CAM). ``options`` are
    the method's own (its :attr:`options` record), each set as an attribute of the same name.
    """

    # The method's record; a subclass sets name and default_target, and the rest where it differs.
    name: ClassVar[str]  # the config's ``method``
    default_target: ClassVar[str | None]  # a name in amva.cam.targets; None: the method uses no target
    needs_gradients: ClassVar[bool] = False  # gradient CAMs: the self-cosine (zero gradient) is refused
    options: ClassVar[Mapping[str, Option]] = {}
    # images per call unless a config says; perturbation CAMs (Score-CAM: 1) batch their masked inputs instead
    default_batch_size: ClassVar[int] = 4
    last_scores: torch.Tensor | None = None  # set by methods that score channels (Score-CAM)

    def __init__(self, model: nn.Module, target: Target | None = None, layer: str = "auto", **options: Any) -> None:
        if target is None and self.default_target is not None:
            raise ValueError(f"{type(self).__name__} needs a target")
        for key, value in self.option_values(options).items():
            setattr(self, key, value)
        self.model = model.eval()
        self.target = target
        self.layer = resolve_layer(model, layer)
        self._module = dict(model.named_modules())[self.layer]

    @classmethod
    def target_name(cls, target: str = "default") -> str | None:
        """The target ``target`` means for this method: ``default`` is its own; None where it uses none."""
        name = cls.default_target if target == "default" else target
        if cls.default_target is None and name is not None:
            raise ValueError(f"CAM method {cls.name!r} uses no target; leave target at 'default'")
        return name

    @classmethod
    def option_values(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every option of the method: ``given`` checked by name and type, the others at their defaults."""
        unknown = set(given) - set(cls.options)
        if unknown:
            raise ValueError(
                f"{', '.join(sorted(unknown))}: not an option of CAM method {cls.name!r}; "
                f"its options: {', '.join(cls.options) or 'none'}"
            )
        return {name: option.check(name, given.get(name, option.default)) for name, option in cls.options.items()}

    @contextmanager
    def _hook(self, store: dict[str, torch.Tensor]) -> Iterator[None]:
        """Record the layer output; with gradients, make it the graph's only leaf."""

        def capture(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
            if self.needs_gradients:
                output = output.detach().requires_grad_(True)
            store["acts"] = output
            return output

        handle = self._module.register_forward_hook(capture)
        try:
            yield
        finally:
            handle.remove()

    def capture(
        self, x: torch.Tensor, references: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Activations, embedding and (for gradient CAMs) d target / d activations.

        The target compares each embedding with ``references`` (``(N, D)``), by default
        the images' own detached embeddings.
        """
        store: dict[str, torch.Tensor] = {}
        if self.needs_gradients:
            assert self.target is not None
            with torch.enable_grad(), self._hook(store):
                emb = self.model(x)
                ref = emb.detach() if references is None else references.to(emb)
                score = self.target(emb, ref).sum()
                (grads,) = torch.autograd.grad(score, store["acts"])
            return store["acts"].detach(), emb.detach(), grads
        with torch.inference_mode(), self._hook(store):
            emb = self.model(x)
        return store["acts"], emb, None

    @abstractmethod
    def weights(
        self, x: torch.Tensor, acts: torch.Tensor, emb: torch.Tensor, grads: torch.Tensor | None
    ) -> torch.Tensor:
        """Channel weights ``(N, C)``; the one thing a CAM method defines.

        ``emb`` holds the reference embeddings the target compares to: the images' own
        unless ``references`` were given to :meth:`__call__`.
        """

    def combine(self, acts: torch.Tensor, weights: torch.Tensor, grads: torch.Tensor | None) -> torch.Tensor:
        """The map before ReLU, ``(N, h, w)``: by default ``sum_k w_k A_k``."""
        return torch.einsum("nc,nchw->nhw", weights, acts)

    def __call__(self, x: torch.Tensor, references: torch.Tensor | None = None) -> CamResult:
        """Maps for a batch ``x`` of shape ``(N, 3, H, W)``.

        ``references`` (``(N, D)``, optional) replace the images' own embeddings as the
        target's second argument, e.g. identity means for ``identity_cosine``.
        """
        if references is None and getattr(self.target, "needs_reference", False):
            name = getattr(self.target, "__name__", self.target)
            raise ValueError(f"CAM target {name!r} needs references: call cam(x, references=...)")
        acts, emb, grads = self.capture(x, references)
        ref = emb if references is None else references.to(emb)
        w = self.weights(x, acts, ref, grads)
        with torch.inference_mode():
            native = minmax(F.relu(self.combine(acts, w, grads)))
            maps = upsample(native, x.shape[-2:])
            baseline = upsample(minmax(F.relu(acts.mean(dim=1))), x.shape[-2:])
        return CamResult(maps, native, w, pearson(maps, baseline), scores=self.last_scores)

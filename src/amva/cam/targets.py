"""CAM targets derived from the face embedding.

An FR model has no class label, so a CAM explains a scalar computed from the
embedding. A target is a plain callable ``target(embedding, reference) -> (B,)`` where
``reference`` is the (detached) embedding of the image's own unmasked input, or,
when the CAM is called with ``references``, the given one (``identity_cosine``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

Target = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def self_cosine(embedding: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Cosine to the image's own embedding: how much of the identity survives a mask.

    Its gradient at the unmasked input is zero (it is at its maximum there), so it only
    suits perturbation CAMs such as Score-CAM.
    """
    return F.cosine_similarity(embedding, reference, dim=1)


def self_projection(embedding: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Projection on the image's own detached unit embedding.

    Equal to the embedding norm in value at the unmasked input, with a useful gradient:
    the default for gradient CAMs.
    """
    return (embedding * F.normalize(reference.detach(), dim=1)).sum(dim=1)


def embedding_norm(embedding: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """L2 norm of the unnormalised embedding (MagFace-style quality signal)."""
    del reference
    return embedding.norm(dim=1)


def identity_cosine(embedding: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Cosine to a given reference embedding per image: its identity's mean (:func:`identity_means`).

    The references are not the images' own embeddings, so pass them to the CAM:
    ``cam(x, references=refs)`` with ``refs`` of shape ``(N, D)``; the CAM refuses to
    run this target without them (``needs_reference``). Unlike ``self_cosine`` its
    gradient at the image is not zero, so it suits gradient CAMs as well.
    """
    return F.cosine_similarity(embedding, reference.detach(), dim=1)


identity_cosine.needs_reference = True  # type: ignore[attr-defined]


def identity_means(embeddings: xr.DataArray, identity: xr.DataArray) -> xr.DataArray:
    """Per image, the mean unit embedding of all images of its identity (itself included).

    The references of the ``identity_cosine`` target: the map then shows what
    makes the image look like its identity's centre rather than like itself. An identity
    with one image gets its own unit embedding.
    """
    unit = embeddings.values / np.linalg.norm(embeddings.values, axis=1, keepdims=True)
    _, which = np.unique(identity.sel(image=embeddings["image"]).values, return_inverse=True)
    sums = np.zeros((which.max() + 1, unit.shape[1]))
    np.add.at(sums, which, unit)
    means = sums / np.bincount(which)[:, None]
    return embeddings.copy(data=means[which].astype(unit.dtype))


TARGETS: dict[str, Target] = {
    "self_cosine": self_cosine,
    "self_projection": self_projection,
    "embedding_norm": embedding_norm,
    "identity_cosine": identity_cosine,
}


def get_target(name: str) -> Target:
    """Look a target up by its config name, with the valid names in the error."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown CAM target {name!r}; choose one of {sorted(TARGETS)}") from None

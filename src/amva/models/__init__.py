"""Face recognition models behind one small protocol, loaded from config entries."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch


class FaceModel(Protocol):
    """What the pipeline needs of an FR model: preprocessing facts and three entry points."""

    input_size: tuple[int, int]
    color_order: str
    default_cam_layer: str
    sha256: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def pre_dropout(self, x: torch.Tensor) -> torch.Tensor: ...
    def head(self, f: torch.Tensor) -> torch.Tensor: ...


def load_model(spec: dict[str, Any]) -> FaceModel:
    """Build the model a ``models:`` config entry names."""
    kind = spec.get("kind")
    if kind == "sface":
        from amva.models.sface import load_sface

        return load_sface()
    if kind == "iresnet":
        from amva.models.iresnet import load_iresnet

        missing = [key for key in ("depth", "weights") if key not in spec]
        if missing:
            raise ValueError(f"models: kind 'iresnet' needs {missing}")
        return load_iresnet(int(spec["depth"]), spec["weights"])
    raise ValueError(f"models: kind {kind!r} is not supported; use 'sface' or 'iresnet'")


def to_tensor(faces: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 RGB → ``(N, 3, H, W)`` float32 in [0, 255], as the models expect."""
    return torch.from_numpy(np.ascontiguousarray(faces)).to(device).permute(0, 3, 1, 2).float().contiguous()


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_for_job(spec: dict[str, Any], device: str = "auto", threads: int = 1) -> tuple[FaceModel, torch.device]:
    """The model of a ``models:`` entry on the job's device, with the job's CPU threads."""
    torch.set_num_threads(max(1, threads))
    dev = pick_device(device)
    return load_model(spec).to(dev), dev

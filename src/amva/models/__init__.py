"""Face recognition models behind one small protocol, loaded from config entries."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch


class FaceModel(Protocol):
    """What the pipeline needs of an FR model: preprocessing facts and three entry points."""

    input_size: tuple[int, int]
    color_order: str
    align_template: str  # "arcface112" or "dlib150": datasets are aligned once per template
    default_cam_layer: str
    sha256: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def pre_dropout(self, x: torch.Tensor) -> torch.Tensor: ...
    def head(self, f: torch.Tensor) -> torch.Tensor: ...


def align_template(spec: dict[str, Any]) -> str:
    """The crop a ``models:`` entry needs, known without loading it (for the workflow's DAG)."""
    return "dlib150" if spec.get("kind") == "dlib" else "arcface112"


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
    if kind == "dlib":
        from amva.models.dlib import load_dlib

        return load_dlib(spec.get("weights"))
    if kind == "onnx":
        from amva.models.onnx_convert import load_onnx_model

        if "path" not in spec:
            raise ValueError("models: kind 'onnx' needs 'path' (the ONNX file)")
        return load_onnx_model(spec)
    raise ValueError(f"models: kind {kind!r} is not supported; use 'sface', 'iresnet', 'dlib' or 'onnx'")


def check_input_size(x: torch.Tensor, size: tuple[int, int], what: str) -> None:
    """Refuse faces aligned for another template rather than embed them silently wrong."""
    if tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(
            f"{what} takes {size[0]}x{size[1]} faces, got {x.shape[-2]}x{x.shape[-1]}: "
            "the faces must be aligned with the model's align_template"
        )


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

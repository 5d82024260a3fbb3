"""Face recognition models behind one small protocol, loaded from config entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from amva.datasets.format import Record
from amva.options import Option


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


def _sface(spec: Mapping[str, Any]) -> FaceModel:
    from amva.models.sface import load_sface

    return load_sface()


def _iresnet(spec: Mapping[str, Any]) -> FaceModel:
    from amva.models.iresnet import load_iresnet

    return load_iresnet(int(spec["depth"]), spec["weights"])


def _dlib(spec: Mapping[str, Any]) -> FaceModel:
    from amva.models.dlib import load_dlib

    return load_dlib(spec.get("weights"))


def _onnx(spec: Mapping[str, Any]) -> FaceModel:
    from amva.models.onnx_convert import load_onnx_model

    return load_onnx_model(dict(spec))


@dataclass(frozen=True)
class ModelKind(Record):
    """A ``models:`` kind, declared once: its loader (which imports the model's module), its crop, its own keys.

    ``template`` is known without loading the model, so the workflow plans one aligned copy
    of a dataset per template; the loaded model's ``align_template`` says the same.
    """

    load: Callable[[Mapping[str, Any]], FaceModel]
    template: str = "arcface112"


KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        ModelKind("sface", "OpenCV's SFace", _sface),
        ModelKind(
            "iresnet",
            "insightface arcface_torch iResNet",
            _iresnet,
            options={
                "depth": Option(int, None, "the backbone depth", required=True),
                "weights": Option(str, None, "path of the arcface_torch backbone.pth state_dict", required=True),
            },
        ),
        ModelKind(
            "dlib",
            "dlib's ResNet-29 face descriptor",
            _dlib,
            "dlib150",
            options={"weights": Option(str, None, "a .dat of the same network")},
        ),
        ModelKind(
            "onnx",
            "any ONNX FR model",
            _onnx,
            options={
                "path": Option(str, None, "the ONNX file", required=True),
                "input_size": Option(int, 112, "square input side in pixels"),
                "color_order": Option(str, "RGB", "channel order the graph expects", choices=("RGB", "BGR")),
                "mean": Option(float, 127.5, "subtracted from [0, 255] pixels"),
                "std": Option(float, 127.5, "divisor after the mean"),
                "layer": Option(str, None, "the CAM layer `auto` resolves to"),
            },
        ),
    )
}
"""Model kind name → record; adding a kind is its module and one record here."""


def get_kind(spec: Mapping[str, Any]) -> ModelKind:
    """The record of a ``models:`` entry's kind, with the valid kinds in the error."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"models: kind {kind!r} is not supported; use one of {', '.join(KINDS)}")
    return KINDS[kind]


def align_template(spec: Mapping[str, Any]) -> str:
    """The crop a ``models:`` entry needs, known without loading it (for the workflow's DAG)."""
    return get_kind(spec).template


def load_model(spec: Mapping[str, Any]) -> FaceModel:
    """Build the model a ``models:`` config entry names; the keys it leaves out take their kind's defaults."""
    kind = get_kind(spec)
    missing = kind.missing(spec)
    if missing:
        raise ValueError(f"models: kind {kind.name!r} needs {', '.join(missing)}")
    return kind.load({**kind.defaults(), **spec})


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


CPU_BATCH = 4  # eager CPU forwards, and Score-CAM's masked passes, run fastest at 2-4 (docs/benchmarks.md)
CUDA_BATCH_SCALE = 16


def batch_for(device: torch.device, cpu_batch: int = CPU_BATCH) -> int:
    """Inputs per forward on ``device``: the size tuned on CPUs, 16 times it on CUDA.

    Small batches run fastest on CPUs; at that size a GPU does little but launch kernels. The
    CUDA size is untuned: no GPU has run amva's benchmarks yet (bench/gpu.sh).
    """
    return cpu_batch * CUDA_BATCH_SCALE if device.type == "cuda" else cpu_batch


def load_for_job(spec: Mapping[str, Any], device: str = "auto", threads: int = 1) -> tuple[FaceModel, torch.device]:
    """The model of a ``models:`` entry on the job's device, with the job's CPU threads."""
    torch.set_num_threads(max(1, threads))
    dev = pick_device(device)
    return load_model(spec).to(dev), dev


def he_normal(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """He (Kaiming) normal on an ``(out, in, ...)`` weight, fan-in and ReLU gain; bias 0."""
    torch.nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
    if bias is not None:
        torch.nn.init.zeros_(bias)

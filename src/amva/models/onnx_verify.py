"""Every converted ONNX model is checked against onnxruntime, the reference runtime, before use.

Why: a converter gap or an export quirk gives plausible but wrong embeddings, and nothing
downstream would notice (a Reshape that hard-codes batch 1 does not fail at batch 2; it
merges the images). So amva's module embeds :data:`PROBE_BATCH` distinct synthetic faces
in one batch, onnxruntime embeds them one image at a time, and every image's embedding
must agree to :data:`TOLERANCE` of its norm; otherwise the model is refused with the file
and the largest difference. A pass is remembered in ``$AMVA_CACHE/onnx-verified/`` per file
sha256 (and converter source), so later loads do not run onnxruntime again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from amva.fetch import cache_path
from amva.io import write_bytes

if TYPE_CHECKING:
    import onnx
    import onnxruntime

    from amva.models.onnx_convert import OnnxFaceModel

__all__ = [
    "PROBE_BATCH",
    "TOLERANCE",
    "OnnxMismatch",
    "Verification",
    "converter_digest",
    "ensure_verified",
    "onnxruntime_session",
    "probe_faces",
    "verify_against_onnxruntime",
]

PROBE_BATCH = 4
"""Images per check: at least 3, so that a batch merged by a fixed-batch Reshape shows."""

TOLERANCE = 1e-3
"""Largest allowed ``max |amva - onnxruntime| / ||onnxruntime||`` of one image's embedding
(faithful conversions agree to ~1e-6, SFace's dequantised int8 weights included)."""

_EYE, _DARK = (0.07, 0.035), ((10, 10, 10), (70, 70, 70))
_PARTS = (
    ((0.5, 0.55), (0.34, 0.46), 12.0, ((150, 100, 80), (240, 190, 160))),  # face oval, skin tones
    ((38.29 / 112, 51.70 / 112), _EYE, 12.0, _DARK),  # eyes, nose tip, mouth at the ArcFace template's landmarks
    ((73.53 / 112, 51.50 / 112), _EYE, 12.0, _DARK),
    ((56.03 / 112, 71.74 / 112), (0.04, 0.06), 6.0, ((120, 70, 60), (200, 150, 120))),
    ((56.14 / 112, 92.29 / 112), (0.14, 0.04), 12.0, ((120, 30, 30), (200, 90, 90))),
)
"""(centre (x, y), radii, edge sharpness, colour range) of the probe faces' parts, in image fractions."""

_log = logging.getLogger(__name__)


class OnnxMismatch(ValueError):
    """amva's conversion of an ONNX file disagrees with onnxruntime (or cannot be checked by it)."""


@dataclass(frozen=True)
class Verification:
    """How amva's embeddings of the probe faces compare with onnxruntime's, image by image."""

    file: str
    sha256: str
    converter: str  # digest of the converter's source: a changed converter verifies again
    input_size: tuple[int, int]
    batch: int
    max_rel_diff: float  # worst image: max |amva - onnxruntime| / ||onnxruntime||
    min_cosine: float
    worst_image: int
    seconds: float


def probe_faces(n: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """``n`` different face-like RGB images in [0, 255], ``(n, 3, h, w)``, seeded.

    A skin-toned oval with eyes, nose and mouth at the ArcFace template's places on a
    background, each image with its own shift, scale, colours, light and noise: models
    respond to them as to faces, and images that got mixed up in a batch change the result.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy, xx = yy / h, xx / w
    images = np.empty((n, 3, h, w), np.float32)
    for k in range(n):
        shift, scale = rng.normal(0, 0.03, 2), rng.uniform(0.9, 1.1)
        img = rng.uniform(0, 255, (3, 1, 1)) * (0.6 + 0.4 * (rng.uniform() * xx + rng.uniform() * yy))
        for (cx, cy), (rx, ry), sharp, (lo, hi) in _PARTS:
            x0, y0 = 0.5 + (cx - 0.5) * scale + shift[0], 0.5 + (cy - 0.5) * scale + shift[1]
            d = np.hypot((xx - x0) / (rx * scale), (yy - y0) / (ry * scale))
            mask = 1.0 / (1.0 + np.exp(sharp * (d - 1.0)))  # a soft-edged ellipse
            img = img * (1 - mask) + mask * rng.uniform(lo, hi)[:, None, None]
        light = 0.7 + 0.6 * np.clip(rng.uniform(-1, 1) * (xx - 0.5) + rng.uniform(-1, 1) * (yy - 0.5) + 0.5, 0, 1)
        images[k] = np.clip(img * light + rng.normal(0, 6, img.shape), 0, 255)
    return torch.from_numpy(images)


def onnxruntime_session(
    model: str | Path | onnx.ModelProto, extra_outputs: tuple[str, ...] = ()
) -> onnxruntime.InferenceSession:
    """onnxruntime (CPU) on an ONNX file or ModelProto, fed only its image input.

    Some files list weights nothing reads as graph inputs (SFace's pre-quantisation
    weights); onnxruntime would demand them as feeds, so they are dropped.
    ``extra_outputs`` adds intermediate tensors to the outputs (for comparing layers).
    """
    import onnx
    import onnxruntime as ort

    proto = (
        onnx.load(str(model))
        if isinstance(model, str | Path)
        else onnx.ModelProto.FromString(model.SerializeToString())
    )
    graph = proto.graph
    consumed = {i for node in graph.node for i in node.input}
    weights = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name in consumed and i.name not in weights]
    del graph.input[:]
    graph.input.extend(keep)
    graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in extra_outputs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@functools.cache
def converter_digest() -> str:
    """sha256 of the converter's and this verifier's source, part of a cached verdict's key."""
    digest = hashlib.sha256()
    for name in ("onnx_convert.py", "onnx_verify.py"):
        digest.update(Path(__file__).with_name(name).read_bytes())
    return digest.hexdigest()


@torch.inference_mode()
def verify_against_onnxruntime(model: OnnxFaceModel, batch: int = PROBE_BATCH, seed: int = 0) -> Verification:
    """Compare ``model`` (one batch) with onnxruntime (per image) on probe faces; OnnxMismatch if they differ."""
    start = time.perf_counter()
    faces = probe_faces(batch, model.input_size, seed).to(model.input_mean.device)
    what = f"{model.path}: amva's conversion does not match onnxruntime on {batch} probe faces in one batch"
    try:
        ours = model(faces).float().cpu().numpy()
    except (RuntimeError, ValueError, IndexError) as err:
        raise OnnxMismatch(f"{what}: amva's module fails on them ({err}); report the file to amva") from err
    graph_in = model.normalize(faces).cpu().numpy()
    try:
        session = onnxruntime_session(model.path)
        name = session.get_inputs()[0].name
        ref = np.stack([session.run(None, {name: graph_in[i : i + 1]})[0].reshape(-1) for i in range(batch)])
    except Exception as err:  # onnxruntime's errors derive from Exception only; say which file failed
        raise OnnxMismatch(
            f"{model.path}: onnxruntime, which amva checks every conversion against, cannot run this file ({err}); "
            "check that it is a valid ONNX model for a 3-channel image input"
        ) from err
    if ours.shape != ref.shape:
        raise OnnxMismatch(
            f"{what}: its output is {ours.shape}, onnxruntime's {ref.shape} (one row per image); the graph "
            "mixes the images of a batch in a way the converter does not undo. Re-export the model with a "
            "dynamic batch axis, or report the file to amva"
        )
    tiny = np.finfo(np.float32).tiny
    norm = np.maximum(np.linalg.norm(ref, axis=1), tiny)
    rel = np.abs(ours - ref).max(axis=1) / norm
    rel = np.where(np.isfinite(rel), rel, np.inf)  # NaN counts as the worst
    cos = (ours * ref).sum(axis=1) / np.maximum(np.linalg.norm(ours, axis=1), tiny) / norm
    worst = int(np.argmax(rel))
    result = Verification(
        str(model.path),
        model.sha256,
        converter_digest(),
        tuple(model.input_size),
        batch,
        float(rel[worst]),
        float(cos.min()),
        worst,
        time.perf_counter() - start,
    )
    if result.max_rel_diff > TOLERANCE:
        raise OnnxMismatch(
            f"{what}: the largest difference is {result.max_rel_diff:.3g} of the embedding's norm (image {worst}; "
            f"cosine {float(cos[worst]):.6f}), more than {TOLERANCE:g}. The file uses something amva's converter "
            "gets wrong: do not use it with kind: onnx, and report the file to amva"
        )
    return result


def ensure_verified(model: OnnxFaceModel) -> Verification:
    """The model's verification, from the cache when this file already passed; else run and cache it."""
    path = cache_path("onnx-verified", f"{model.sha256}.json")
    cached = _cached(path)
    if cached and (cached.sha256, cached.converter, cached.input_size) == (
        model.sha256,
        converter_digest(),
        tuple(model.input_size),
    ):
        return cached
    result = verify_against_onnxruntime(model)
    _log.info(
        "%s matches onnxruntime: largest difference %.2g of the norm on %d faces (%.1f s)",
        model.path,
        result.max_rel_diff,
        result.batch,
        result.seconds,
    )
    write_bytes(path, json.dumps(asdict(result), indent=1).encode())
    return result


def _cached(path: Path) -> Verification | None:
    """A stored pass, or None when there is none or it is unreadable (then it is verified again)."""
    try:
        data = json.loads(path.read_text())
        return Verification(**{**data, "input_size": tuple(data["input_size"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None

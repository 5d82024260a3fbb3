"""The GPU path: batch sizes by device, nothing CPU-specific on CUDA, CUDA against CPU, and
bench/gpu.sh. The CUDA tests skip without a CUDA device; bench/gpu.sh runs them where one is."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from amva.cam import images_per_call, make_cam
from amva.cam.base import pearson
from amva.cam.faithfulness import Embedder
from amva.models import batch_for, to_tensor

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_batch_sizes_follow_the_device_unless_given():
    cpu = torch.device("cpu")
    assert batch_for(cpu, 4) == 4 and batch_for(CUDA, 4) == 64
    assert images_per_call({"method": "gradcam"}, cpu) == 4 and images_per_call({"method": "gradcam"}, CUDA) == 64
    assert images_per_call({"method": "scorecam"}, cpu) == 1 and images_per_call({"method": "scorecam"}, CUDA) == 16
    assert images_per_call({"method": "gradcam", "batch_size": 8}, CUDA) == 8


def test_nothing_cpu_specific_runs_off_the_cpu(sface):
    """The oneDNN freeze and the single-threaded workers are for CPUs: another device gets the eager
    BN-folded model on one worker (checked with a meta tensor, so no GPU is needed)."""
    cam = make_cam(sface, "scorecam")
    assert cam._workers(CUDA) == 1 and cam._workers(torch.device("cpu")) == torch.get_num_threads()
    assert cam._runner(torch.empty(4, 3, 112, 112, device="meta")) is cam.masked_model
    embedder = Embedder(sface, (3, 112, 112), CUDA)
    assert embedder.workers == 1 and not isinstance(embedder.model, torch.jit.ScriptModule)


@pytest.fixture(scope="module")
def faces(demo):
    return to_tensor(demo[0]["pixels"].isel(image=slice(0, 4)).values)


@needs_cuda
def test_cuda_embeddings_and_gradcam_equal_the_cpu(sface, faces):
    gpu = sface.to(CUDA)  # the session's model: moved back below
    try:
        with torch.inference_mode():
            on_gpu = gpu(faces.to(CUDA)).cpu()
        grad_gpu = make_cam(gpu, "gradcam")(faces.to(CUDA))
    finally:
        sface.to("cpu")
    with torch.inference_mode():
        on_cpu = sface(faces)
    assert float((on_gpu - on_cpu).norm(dim=1).max() / on_cpu.norm(dim=1).min()) < 1e-3
    grad_cpu = make_cam(sface, "gradcam")(faces)
    assert float((grad_gpu.maps.cpu() - grad_cpu.maps).abs().max()) < 1e-2
    assert float(pearson(grad_gpu.maps.cpu(), grad_cpu.maps).min()) > 0.999


@needs_cuda
def test_cuda_scorecam_equals_the_cpu_and_autocast_is_close(sface, faces):
    x = faces[:1]
    cpu = make_cam(sface, "scorecam")(x)
    sface.to(CUDA)
    try:
        exact = make_cam(sface, "scorecam")(x.to(CUDA))
        half = make_cam(sface, "scorecam", autocast=True)(x.to(CUDA))
    finally:
        sface.to("cpu")
    assert float((exact.scores.cpu() - cpu.scores).abs().max()) < 2e-3
    assert float(pearson(exact.maps.cpu(), cpu.maps)[0]) > 0.999
    r = float(pearson(half.maps.cpu(), cpu.maps)[0])
    print(f"\nbf16 autocast on CUDA: map r = {r:.5f} with the exact CPU map")
    assert r > 0.99


def test_gpu_script_runs_on_the_cpu(tmp_path):
    """bench/gpu.sh's benchmark half, on the CPU with an early small layer, so that it cannot rot."""
    out = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--device", "cpu", "--images", "1", "--repeats", "1",
         "--layer", "body.conv_4.act"],
        cwd=ROOT, env={**os.environ, "PY": sys.executable}, capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| forward (embedding) | 32 |") for r in rows)
    assert sum(r.startswith("| Score-CAM ") for r in rows) == 5 and "dense GEMM" in out
    gaps = [float(r.rsplit("max |map - first row| ", 1)[1].split(")")[0]) for r in rows if "Score-CAM" in r]
    assert max(gaps[:4]) < 1e-3  # the exact variants agree; the last, bf16, is approximate
    assert np.isfinite(gaps).all()

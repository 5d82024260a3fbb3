#!/usr/bin/env bash
# The GPU checks in one command, for the day a GPU is there (about 5 minutes on one GPU):
#   1. the CUDA tests (tests/test_gpu.py: CUDA against CPU for embeddings, Grad-CAM and Score-CAM,
#      and the Score-CAM autocast's fidelity);
#   2. the embedding, Grad-CAM and Score-CAM timings of bench/bench_cam.py, each against the
#      device's dense GEMM rate measured in the same run (a Markdown table).
# Usage: bench/gpu.sh [--device cuda|cpu] [bench_cam.py options, e.g. --images 1 --layer body.conv_4.act]
# `--device cpu` with a small layer is the smoke run that tests/test_gpu.py makes on every `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
device=cuda
if [[ ${1:-} == --device ]]; then device=$2; shift 2; fi
if [[ $device == cuda ]]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: torch sees no CUDA device; see README: GPU")'
  "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py
fi
"$PY" bench/bench_cam.py --device "$device" "$@"

#!/usr/bin/env bash
# A separate venv for bench/bench_peers.py: the peer CAM libraries need torchvision,
# which never enters amva's own dependencies (issue 3). amva goes in without its deps,
# followed by the runtime packages the benchmark imports from it, at the project's pins.
#
#   bash bench/peers-env.sh [VENV]        # default: .bench-venv (git-ignored)
#   .bench-venv/bin/python bench/bench_peers.py --help
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.bench-venv}
PYTHON=${PYTHON:-python3.11}

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/pip" install --quiet)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1 grad-cam==1.5.7 torchcam==0.5.0
# amva's runtime pins, read from pyproject.toml so they cannot drift from the project's
RUNTIME=$("$VENV/bin/python" - <<'EOF'
import tomllib

deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
skip = ("torch", "snakemake", "snakemake-executor-plugin-slurm", "altair", "vl-convert-python")  # torch comes from above; the rest the bench never imports
print(" ".join(d for d in deps if d.split("==")[0] not in skip))
EOF
)
# shellcheck disable=SC2086
"${PIP[@]}" $RUNTIME
"${PIP[@]}" --no-deps -e .
"$VENV/bin/python" -c "import amva, pytorch_grad_cam, torchcam, torch, torchvision; print('peers venv ok: torch', torch.__version__, 'torchvision', torchvision.__version__)"

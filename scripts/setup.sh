#!/usr/bin/env bash
# Sets up pytest-hetero for development and for running the benchmark suite:
# a virtual environment in .venv with PyTorch, the package (editable) and every extra.
#
#   bash scripts/setup.sh            # CPU PyTorch 2.13.0 (what CI uses)
#   TORCH_SPEC='torch' bash scripts/setup.sh   # whatever build your index serves (CUDA, ROCm)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

step() { printf '==> [%s] %s\n' "$(date +%T)" "$*" >&2; }
pip_install() { .venv/bin/python -m pip install --no-input --progress-bar on "$@"; }

if [ ! -x .venv/bin/python ]; then
    step "creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
step "1/3 pip"
pip_install --upgrade pip
# torch first, pinned: an unpinned torch pulled in by the extras would be a multi-GB CUDA build.
step "2/3 $TORCH_SPEC (the CPU wheel is about 200 MB)"
pip_install "$TORCH_SPEC"
step "3/3 pytest-hetero (editable) with every extra"
pip_install -e '.[torch,slurm,kubernetes,reports,postgres,data,energy,dev]'
.venv/bin/python -c 'import pytest_hetero, torch; print(f"pytest-hetero {pytest_hetero.__version__}, torch {torch.__version__}: ready in .venv")'

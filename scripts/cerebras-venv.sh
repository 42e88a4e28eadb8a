#!/usr/bin/env bash
# Builds .venv-cerebras: cerebras-pytorch 2.10 with its own torch (2.4.0), which does not load beside
# the main venv's torch. Its CPU backend needs no Cerebras hardware, so the test suite runs a workload's
# tiny configuration through the cerebras adapter with it (tests/backends/test_cerebras_cpu.py). About 3 GB
# downloaded from PyPI, under 2 minutes, 5.7 GB on disk.
# Usage: bash scripts/cerebras-venv.sh [DIR]   (default .venv-cerebras; does nothing when it works)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.venv-cerebras}
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import cerebras.pytorch' 2>/dev/null; then
    exit 0
fi
echo "==> building $dir (cerebras-pytorch 2.10 and its torch; about 3 GB, a few minutes)" >&2
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet 'cerebras-pytorch==2.10.*'
"$dir/bin/python" -c 'import cerebras.pytorch as cstorch, torch; print("cerebras.pytorch ready, torch", torch.__version__)'

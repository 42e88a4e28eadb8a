#!/usr/bin/env bash
# Builds .venv-torchonly: a Python with torch (the CPU build CI installs) and nothing of pytest-hetero,
# standing in for a stock vendor image or site venv. The bundle tests run their workloads with it to
# show that the workload travels with the job (tests/backends/test_bundle.py). About 20 s offline.
# Usage: bash scripts/torch-only-venv.sh [DIR]   (default .venv-torchonly; does nothing when it works)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.venv-torchonly}
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import torch' 2>/dev/null; then
    exit 0
fi
echo "==> building $dir (torch only, for the workload-bundle tests)" >&2
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet torch==2.13.0
# Asked from / : from the checkout, Python would find pytest_hetero/ in the current directory.
python=$(cd "$dir" && pwd)/bin/python
if (cd / && "$python" -c 'import pytest_hetero' 2>/dev/null); then
    echo "$dir can import pytest_hetero: it would prove nothing" >&2
    exit 1
fi

#!/usr/bin/env bash
# The main job: the benchmark suite on the built-in 'local' platform (this host's CPUs), with the
# JSON report and JUnit in .hetero/. Builds .venv first when it is missing. Extra arguments go to
# pytest, e.g. `bash scripts/bench.sh --platforms-file platforms.example-centre.yaml --platform cerebras`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh
exec .venv/bin/pytest benchmarks/ --hetero-json .hetero/report.json --junitxml .hetero/junit.xml "$@"

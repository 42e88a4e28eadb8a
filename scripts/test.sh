#!/usr/bin/env bash
# The test suite. Builds .venv first when it is missing. As root on Debian it also installs and
# starts what the live tests need: a real Slurm cluster (scripts/slurm-local.sh), a PostgreSQL
# server (scripts/postgres-local.sh), headless Chromium for the HTML report, promtool for the OpenMetrics output and kubectl for the
# Kubernetes fault suite's printed clean-up commands; it stops again what
# it started. Elsewhere those tests are skipped with the reason. Anywhere, it builds .venv-torchonly
# and .venv-cerebras from the package registry when they are missing (HETERO_TEST_VENVS=off: not). Extra arguments go to pytest (default: the whole suite on 2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh

started=()
stop_started() {
    local service
    for service in "${started[@]}"; do
        bash "scripts/$service-local.sh" down >/dev/null 2>&1 || true
    done
}
trap stop_started EXIT

can_start_services() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -r /etc/debian_version ]
}

if [ "${HETERO_TEST_SERVICES:-auto}" != "off" ] && can_start_services; then
    if [ -z "${HETERO_TEST_POSTGRES_URL:-}" ]; then
        echo "==> starting PostgreSQL for the history-store tests" >&2
        HETERO_TEST_POSTGRES_URL=$(bash scripts/postgres-local.sh up | tail -1)
        export HETERO_TEST_POSTGRES_URL
        started+=(postgres)
    fi
    if ! command -v chromium >/dev/null; then
        echo "==> installing Chromium (Debian) for the HTML report's browser test" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    if ! command -v promtool >/dev/null; then
        echo "==> installing promtool (Debian prometheus) for the OpenMetrics output's check" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    fi
    if ! command -v kubectl >/dev/null; then
        echo "==> installing kubectl (Debian kubernetes-client) to run the clean-up commands the Kubernetes fault suite prints" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null; } ||
            echo "==> could not install kubectl: that check of tests/backends/test_k8s_faults.py skips (fails under CI)" >&2
    fi
    if ! sinfo -h >/dev/null 2>&1; then
        echo "==> starting a local Slurm cluster for the live Slurm tests" >&2
        bash scripts/slurm-local.sh up
        started+=(slurm)
    fi
else
    echo "==> not root on Debian (or HETERO_TEST_SERVICES=off): the live Slurm and PostgreSQL tests are skipped" >&2
fi

# The Pythons that stand in for the compute side: torch alone (the workload-bundle tests) and
# cerebras-pytorch with its own torch (the Cerebras adapter on the SDK's CPU backend). Built from the
# package registry when missing, where that works; else their tests skip (and fail under CI).
if [ "${HETERO_TEST_VENVS:-auto}" != "off" ]; then
    bash scripts/torch-only-venv.sh ||
        echo "==> could not build .venv-torchonly: the workload-bundle tests will skip (fail under CI)" >&2
    bash scripts/cerebras-venv.sh ||
        echo "==> could not build .venv-cerebras: the Cerebras CPU-backend test will skip (fail under CI)" >&2
fi

if [ "$#" -eq 0 ]; then
    set -- -n 2 tests/
fi
status=0
.venv/bin/pytest "$@" || status=$?
exit "$status"

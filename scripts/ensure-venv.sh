#!/usr/bin/env bash
# Sourced by bench.sh and test.sh: build .venv (scripts/setup.sh) when it is missing or when
# pyproject.toml changed since it was built; otherwise do nothing.
stamp=.venv/.hetero-setup-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ ! -e "$stamp" ]; then
    echo "==> .venv is missing or out of date: setting it up (a few minutes the first time)" >&2
    bash scripts/setup.sh
    rm -f .venv/.hetero-setup-*
    touch "$stamp"
fi

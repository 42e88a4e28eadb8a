"""Opted in, the live Kubernetes suite fails (never skips) when KUBECONFIG cannot be used.

A CI job that asks for the live suite must not pass green because the cluster
it names is missing, malformed or down.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

LIVE_SUITE = Path(__file__).parent / "test_k8s_live.py"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens there


def _kubeconfig(tmp_path: Path, case: str) -> str:
    path = tmp_path / "kubeconfig"
    if case == "garbage":
        path.write_text("clusters: [this is: not a kube config\n")
    elif case == "unreachable":
        server = f"http://127.0.0.1:{_closed_port()}"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: k, cluster: {{server: '{server}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        )
    return str(path)  # "missing": never written


@pytest.mark.parametrize("case", ["missing", "garbage", "unreachable"])
def test_an_unusable_kubeconfig_fails_the_opted_in_live_suite(tmp_path: Path, case: str) -> None:
    environ = {**os.environ, "HETERO_LIVE_KUBERNETES": "1", "KUBECONFIG": _kubeconfig(tmp_path, case)}
    argv = [sys.executable, "-m", "pytest", str(LIVE_SUITE), "-p", "no:cacheprovider", "-q", "-rfE"]
    argv += [f"--basetemp={tmp_path / 'run'}", "-k", "test_failure_reports_exit_status_and_log"]
    done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "skipped" not in done.stdout and "1 error" in done.stdout, done.stdout
    assert "--hetero-live-kubernetes" in done.stdout, done.stdout  # the reason names the opt-in

"""A tiny workload of your own: time square matrix multiplications with torch.

Any program works if it prints one `:::HETERO_METRICS {json}` line; the helper
below writes it. The plugin passes the test's config in HETERO_WORKLOAD_CONFIG.
"""

import json
import os
import time

import torch

from pytest_hetero.workloads.common import WorkloadMetric, emit_metrics

config = json.loads(os.environ.get("HETERO_WORKLOAD_CONFIG", "{}"))
size, repeats = int(config.get("size", 256)), int(config.get("repeats", 20))

a, b = torch.randn(size, size), torch.randn(size, size)
torch.mm(a, b)  # warm-up, not timed
started = time.perf_counter()
for _ in range(repeats):
    torch.mm(a, b)
elapsed_s = time.perf_counter() - started

emit_metrics(
    [
        WorkloadMetric("matmul_per_s", repeats / elapsed_s, "1/s", higher_is_better=True),
        WorkloadMetric("gflops", 2 * size**3 * repeats / elapsed_s / 1e9, "GFLOP/s", higher_is_better=True),
    ],
    workload="matmul",
    config=config,
)

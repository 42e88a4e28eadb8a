"""CosmoFlow (MLPerf HPC), tiny configuration: 32^3 x 4 volumes, synthetic data.

The same config runs on every selected platform; only the accelerator
adapter differs. References: benchmarks/references.yaml.
"""

import pytest

TINY = {"preset": "tiny", "train_samples": 32, "epochs": 2, "warmup_steps": 2}
KINDS = ["cpu", "nvidia-gpu", "amd-gpu", "graphcore-ipu", "cerebras"]


@pytest.mark.hetero(workload="cosmoflow", config=TINY, accelerators=KINDS, timeout_min=10)
def test_cosmoflow_tiny(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
    assert hetero_result.metric("epochs") == 2

"""DeepCAM (MLPerf HPC), tiny configuration: 64 x 96 x 16 climate images, synthetic data.

The same config runs on every selected platform; only the accelerator
adapter differs. References: benchmarks/references.yaml.
"""

import pytest

TINY = {"preset": "tiny", "train_samples": 16, "epochs": 1, "warmup_steps": 1}
KINDS = ["cpu", "nvidia-gpu", "amd-gpu", "graphcore-ipu", "cerebras"]


@pytest.mark.hetero(workload="deepcam", config=TINY, accelerators=KINDS, timeout_min=10)
def test_deepcam_tiny(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
    assert 0 <= hetero_result.metric("eval_accuracy") <= 1

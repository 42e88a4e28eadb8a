"""ResNet-50 v1.5 training (MLPerf Training), tiny configuration.

The same config runs on every selected platform; only the accelerator
adapter differs. References: benchmarks/references.yaml.
"""

import pytest

TINY = {"image_size": 32, "batch_size": 4, "train_steps": 8, "warmup_steps": 2, "eval_steps": 1, "num_classes": 10}


@pytest.mark.hetero(workload="resnet50", config=TINY, accelerators=["cpu", "nvidia-gpu", "amd-gpu"], timeout_min=10)
def test_resnet50_tiny(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
    assert hetero_result.metric("data_wait_fraction") < 0.5

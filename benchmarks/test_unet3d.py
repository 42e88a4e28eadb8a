"""3D U-Net (MLPerf Training, KiTS19), tiny configuration: 64^3 patches, synthetic data.

Sliding-window evaluation is not available on the cerebras adapter, so the
kinds below leave it out. References: benchmarks/references.yaml.
"""

import pytest

TINY = {"preset": "tiny", "train_samples": 3, "warmup_steps": 1}
KINDS = ["cpu", "nvidia-gpu", "amd-gpu", "graphcore-ipu"]


@pytest.mark.hetero(workload="unet3d", config=TINY, accelerators=KINDS, timeout_min=10)
def test_unet3d_tiny(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
    assert hetero_result.metric("steady_steps") == 2

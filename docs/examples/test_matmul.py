import pytest


@pytest.mark.hetero(
    command=["python", "matmul_workload.py"],  # relative to this test file's directory
    config={"size": 128, "repeats": 10},  # the same on every platform
    accelerators=["cpu", "nvidia-gpu", "amd-gpu"],  # other kinds are skipped, with the reason
    timeout_min=5,
)
def test_matmul(hetero_result):
    # The plugin already checked references.yaml; assert anything else here.
    assert hetero_result.metric("gflops") > 0

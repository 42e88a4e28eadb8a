#!/bin/bash

# Parameters
#SBATCH --chdir=/scratch/hetero/runs/golden/test_resnet50_ipu-poprun
#SBATCH --cpus-per-task=48
#SBATCH --error=/scratch/hetero/runs/golden/test_resnet50_ipu-poprun/stderr.log
#SBATCH --job-name='test_resnet50[ipu-poprun]'
#SBATCH --no-requeue
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/hetero/runs/golden/test_resnet50_ipu-poprun/stdout.log
#SBATCH --partition=ipu
#SBATCH --time=90

# setup
set -e
HETERO_T0=$(date +%s.%N)
export HETERO_ACCELERATORS_PER_NODE=16
export HETERO_ACCELERATOR_KIND=graphcore-ipu
export HETERO_PLATFORM=ipu-poprun
export HETERO_RUN_ID=golden
export HETERO_WORKLOAD_CONFIG='{"batch_size":32,"train_steps":100}'
export PYTHONUNBUFFERED=1
source /opt/poplar-sdk-3.3/enable

# command
export SUBMITIT_EXECUTOR=slurm
poprun --num-instances=4 --num-replicas=16 --ipus-per-replica=1 --vipu-server-host=vipu-ctrl --vipu-partition=bench16 --executable-cache-path=/scratch/popef-cache --update-partition=yes --only-output-from-instance=0 /opt/poplar-sdk-3.3/venv-poptorch/bin/python -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size":32,"train_steps":100}'
echo "0 $HETERO_T0 $(date +%s.%N)" > /scratch/hetero/runs/golden/test_resnet50_ipu-poprun/.exit_status.tmp && mv -f /scratch/hetero/runs/golden/test_resnet50_ipu-poprun/.exit_status.tmp /scratch/hetero/runs/golden/test_resnet50_ipu-poprun/exit_status

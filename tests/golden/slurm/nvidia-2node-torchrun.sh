#!/bin/bash

# Parameters
#SBATCH --chdir=/scratch/hetero/runs/golden/test_resnet50_nvidia-2node-torchrun
#SBATCH --error=/scratch/hetero/runs/golden/test_resnet50_nvidia-2node-torchrun/stderr.log
#SBATCH --gpus-per-node=4
#SBATCH --job-name='test_resnet50[nvidia-2node-torchrun]'
#SBATCH --no-requeue
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/hetero/runs/golden/test_resnet50_nvidia-2node-torchrun/stdout.log
#SBATCH --partition=gpu
#SBATCH --time=20

# setup
set -e
HETERO_T0=$(date +%s.%N)
export HETERO_ACCELERATORS_PER_NODE=4
export HETERO_ACCELERATOR_KIND=nvidia-gpu
export HETERO_PLATFORM=nvidia-2node-torchrun
export HETERO_RUN_ID=golden
export HETERO_WORKLOAD_CONFIG='{"batch_size":32,"train_steps":100}'
export PYTHONUNBUFFERED=1

# command
export SUBMITIT_EXECUTOR=slurm
srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c 'exec "$0" -m torch.distributed.run --nnodes="$SLURM_JOB_NUM_NODES" --rdzv-id="$SLURM_JOB_ID" --rdzv-backend=c10d --rdzv-endpoint="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):29400" "$@"' python3 --nproc-per-node=4 -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size":32,"train_steps":100}'
echo "0 $HETERO_T0 $(date +%s.%N)" > /scratch/hetero/runs/golden/test_resnet50_nvidia-2node-torchrun/.exit_status.tmp && mv -f /scratch/hetero/runs/golden/test_resnet50_nvidia-2node-torchrun/.exit_status.tmp /scratch/hetero/runs/golden/test_resnet50_nvidia-2node-torchrun/exit_status

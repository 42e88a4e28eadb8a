#!/bin/bash

# Parameters
#SBATCH --chdir=/scratch/hetero/runs/golden/test_resnet50_nvidia-4gpu-torchrun
#SBATCH --constraint=a100
#SBATCH --cpus-per-task=32
#SBATCH --error=/scratch/hetero/runs/golden/test_resnet50_nvidia-4gpu-torchrun/stderr.log
#SBATCH --exclusive
#SBATCH --gpus-per-node=4
#SBATCH --job-name='test_resnet50[nvidia-4gpu-torchrun]'
#SBATCH --mem=480GB
#SBATCH --no-requeue
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/hetero/runs/golden/test_resnet50_nvidia-4gpu-torchrun/stdout.log
#SBATCH --partition=gpu
#SBATCH --qos=short
#SBATCH --time=60

# setup
set -e
HETERO_T0=$(date +%s.%N)
# passed through sbatch's environment, not written here: HF_TOKEN
export HETERO_ACCELERATORS_PER_NODE=4
export HETERO_ACCELERATOR_KIND=nvidia-gpu
export HETERO_PLATFORM=nvidia-4gpu-torchrun
export HETERO_RUN_ID=golden
export HETERO_WORKLOAD_CONFIG='{"batch_size":32,"train_steps":100}'
export NCCL_DEBUG=WARN
export PYTHONUNBUFFERED=1
module load cuda/12.1 nccl/2.18

# command
export SUBMITIT_EXECUTOR=slurm
/work/venvs/torch-cu121/bin/python -m torch.distributed.run --standalone --nnodes=1 --nproc-per-node=4 -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size":32,"train_steps":100}'
echo "0 $HETERO_T0 $(date +%s.%N)" > /scratch/hetero/runs/golden/test_resnet50_nvidia-4gpu-torchrun/.exit_status.tmp && mv -f /scratch/hetero/runs/golden/test_resnet50_nvidia-4gpu-torchrun/.exit_status.tmp /scratch/hetero/runs/golden/test_resnet50_nvidia-4gpu-torchrun/exit_status

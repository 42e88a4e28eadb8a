#!/bin/bash

# Parameters
#SBATCH --chdir=/scratch/hetero/runs/golden/test_resnet50_cerebras-cs2
#SBATCH --cpus-per-task=64
#SBATCH --error=/scratch/hetero/runs/golden/test_resnet50_cerebras-cs2/stderr.log
#SBATCH --gres=cs:1
#SBATCH --job-name='test_resnet50[cerebras-cs2]'
#SBATCH --mem=205312MB
#SBATCH --no-requeue
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/hetero/runs/golden/test_resnet50_cerebras-cs2/stdout.log
#SBATCH --partition=cs2
#SBATCH --signal=USR1@120
#SBATCH --time=120

# setup
set -e
HETERO_T0=$(date +%s.%N)
export HETERO_ACCELERATORS_PER_NODE=1
export HETERO_ACCELERATOR_KIND=cerebras
export HETERO_PLATFORM=cerebras-cs2
export HETERO_RUN_ID=golden
export HETERO_WORKLOAD_CONFIG='{"batch_size":32,"train_steps":100}'
export PYTHONUNBUFFERED=1

# command
export SUBMITIT_EXECUTOR=slurm
/opt/cerebras/venv-2.1/bin/python -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size":32,"train_steps":100}'
echo "0 $HETERO_T0 $(date +%s.%N)" > /scratch/hetero/runs/golden/test_resnet50_cerebras-cs2/.exit_status.tmp && mv -f /scratch/hetero/runs/golden/test_resnet50_cerebras-cs2/.exit_status.tmp /scratch/hetero/runs/golden/test_resnet50_cerebras-cs2/exit_status

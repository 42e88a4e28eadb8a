#!/bin/bash

# Parameters
#SBATCH --account=ml-bench
#SBATCH --chdir=/scratch/hetero/runs/golden/test_resnet50_cpu
#SBATCH --cpus-per-task=16
#SBATCH --error=/scratch/hetero/runs/golden/test_resnet50_cpu/stderr.log
#SBATCH --job-name='test_resnet50[cpu]'
#SBATCH --mem=64GB
#SBATCH --no-requeue
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/scratch/hetero/runs/golden/test_resnet50_cpu/stdout.log
#SBATCH --partition=standard
#SBATCH --time=30

# setup
set -e
HETERO_T0=$(date +%s.%N)
export HETERO_ACCELERATORS_PER_NODE=1
export HETERO_ACCELERATOR_KIND=cpu
export HETERO_PLATFORM=cpu
export HETERO_RUN_ID=golden
export HETERO_WORKLOAD_CONFIG='{"batch_size":32,"train_steps":100}'
export OMP_NUM_THREADS=16
export PYTHONUNBUFFERED=1

# command
export SUBMITIT_EXECUTOR=slurm
/opt/venvs/bench/bin/python -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size":32,"train_steps":100}'
echo "0 $HETERO_T0 $(date +%s.%N)" > /scratch/hetero/runs/golden/test_resnet50_cpu/.exit_status.tmp && mv -f /scratch/hetero/runs/golden/test_resnet50_cpu/.exit_status.tmp /scratch/hetero/runs/golden/test_resnet50_cpu/exit_status

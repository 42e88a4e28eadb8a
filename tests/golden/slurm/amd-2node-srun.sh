#!/bin/bash

# Parameters
#SBATCH --chdir=/scratch/hetero/runs/golden/test_resnet50_amd-2node-srun
#SBATCH --cpus-per-task=8
#SBATCH --error=/scratch/hetero/runs/golden/test_resnet50_amd-2node-srun/stderr.log
#SBATCH --gres=gpu:8
#SBATCH --hint=nomultithread
#SBATCH --job-name='test_resnet50[amd-2node-srun]'
#SBATCH --licenses=lustre:1
#SBATCH --no-requeue
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --open-mode=append
#SBATCH --output=/scratch/hetero/runs/golden/test_resnet50_amd-2node-srun/stdout.log
#SBATCH --partition=mi250
#SBATCH --reservation=bench-night
#SBATCH --time=45

# setup
set -e
HETERO_T0=$(date +%s.%N)
export HETERO_ACCELERATORS_PER_NODE=8
export HETERO_ACCELERATOR_KIND=amd-gpu
export HETERO_PLATFORM=amd-2node-srun
export HETERO_RUN_ID=golden
export HETERO_WORKLOAD_CONFIG='{"batch_size":32,"train_steps":100}'
export LITERAL='$NOT_EXPANDED'
export MIOPEN_DEBUG_DISABLE_FIND_DB=1
export PYTHONUNBUFFERED=1
module load rocm/5.7.1
source /work/venvs/torch-rocm/bin/activate
export MIOPEN_USER_DB_PATH=/tmp/miopen-$SLURM_JOB_ID

# command
export SUBMITIT_EXECUTOR=slurm
srun --kill-on-bad-exit=1 --cpu-bind=closest python3 -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size":32,"train_steps":100}'
echo "0 $HETERO_T0 $(date +%s.%N)" > /scratch/hetero/runs/golden/test_resnet50_amd-2node-srun/.exit_status.tmp && mv -f /scratch/hetero/runs/golden/test_resnet50_amd-2node-srun/.exit_status.tmp /scratch/hetero/runs/golden/test_resnet50_amd-2node-srun/exit_status

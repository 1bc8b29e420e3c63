#!/bin/bash
# One study on a SLURM cluster: an array job runs the shards, a dependent job merges them.
#
#   bash examples/slurm_array.sh              # submits the shards and the merge
#
# Every array task runs the *same* script (examples/shards_and_merge.py study mode here:
# `python script.py FILE`); PYTRAJ_SHARD tells pytraj which slice of the points it owns,
# and the task writes out/study.shard-<i>-of-<n>.h5. The merge job joins the shard files
# into out/merged.h5 and then runs the script once more against it, which runs only the
# points of shards that died (a node failure, a time limit).
#
#SBATCH --job-name=study-shards
#SBATCH --array=0-3
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=out/slurm-%A_%a.out

set -euo pipefail

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then
    # Run from a login node: submit the array, then the merge once all tasks ended
    # (afterany: also when a shard failed). The merge is a --wrap job, so that the
    # #SBATCH lines above (--array among them) do not make it an array too; the script
    # run after the merge runs only what is missing.
    mkdir -p out
    array_job=$(sbatch --parsable "$0")
    sbatch --dependency="afterany:${array_job}" --job-name=study-merge \
        --output=out/slurm-merge-%j.out --time=02:00:00 \
        --wrap "pytraj merge out/study.shard-*-of-*.h5 -o out/merged.h5 \
                && python examples/shards_and_merge.py out/merged.h5"
    exit 0
fi

# An array task: --array=0-3 and --array=1-4 both give shards 0/4 ... 3/4.
export PYTRAJ_SHARD=$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))/$SLURM_ARRAY_TASK_COUNT
python examples/shards_and_merge.py out/study.h5

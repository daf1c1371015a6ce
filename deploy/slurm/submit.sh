#!/usr/bin/env bash
# Queue a sharded grading run and its merge: deploy/slurm/submit.sh SHARDS
# Run it from the course checkout; the merge starts only if every shard succeeded.
set -euo pipefail
shards="${1:?usage: deploy/slurm/submit.sh SHARDS (e.g. 4)}"
here="$(cd "$(dirname "$0")" && pwd)"
array_job="$(sbatch --parsable --array="0-$((shards - 1))" "$here/grade.sbatch")"
merge_job="$(sbatch --parsable --dependency="afterok:${array_job%%;*}" "$here/merge.sbatch")"
echo "grading: job array $array_job ($shards shards); merge: job $merge_job -> graded/all/grades.csv"

#!/usr/bin/env bash
# Kaldi's run.pl / slurm.pl in one script: run a command as jobs JOB=1..N, one log per job.
#   utils/run_jobs.sh [--backend local|slurm] [--slurm-opts "..."] JOB=1:N LOG cmd args...
# "JOB" in LOG and in the arguments becomes the job number (1..N). local runs the jobs in the
# background on this machine; slurm runs each through `srun $slurm_opts` (inside an allocation, or
# submitting one), so a training job given --ntasks-per-node/--gres gets the devices Lightning uses.
# A single job also echoes its log to the terminal (progress stays visible); with several, the log
# of every failed job is named and its tail printed. Exit status: 0 only if every job succeeded.
set -uo pipefail
backend=local
slurm_opts=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    --slurm-opts) slurm_opts=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 3 ] || [[ ! "$1" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
  echo "usage: $0 [--backend local|slurm] [--slurm-opts \"...\"] JOB=1:N LOG cmd args..." >&2; exit 2
fi
first=${BASH_REMATCH[1]}; last=${BASH_REMATCH[2]}; log=$2; shift 2
case "$backend" in local|slurm) ;; *) echo "$0: --backend must be local or slurm, got '$backend'" >&2; exit 2 ;; esac
if [ "$backend" = slurm ] && ! command -v srun >/dev/null; then
  echo "$0: backend slurm but srun is not on PATH (pass --cmd-backend local, or auto, to run on this machine)" >&2; exit 2
fi
run_one() {  # run_one JOB
  local j=$1 args=() a
  for a in "${@:2}"; do args+=("${a//JOB/$j}"); done
  local l=${log//JOB/$j}
  mkdir -p "$(dirname "$l")"
  {
    echo "# ${args[*]}"; echo "# started $(date '+%F %T') on $(hostname) (backend $backend)"
  } > "$l"
  local rc
  if [ "$backend" = slurm ]; then
    # shellcheck disable=SC2086
    srun $slurm_opts "${args[@]}" >> "$l" 2>&1; rc=$?
  else
    "${args[@]}" >> "$l" 2>&1; rc=$?
  fi
  echo "# ended $(date '+%F %T') with status $rc" >> "$l"
  return $rc
}
if [ "$first" = "$last" ]; then
  run_one "$first" "$@" &
  pid=$!
  l=${log//JOB/$first}
  while [ ! -f "$l" ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done
  tail -n +1 -f --pid=$pid "$l" 2>/dev/null || true  # raw bytes: progress bars (\r) show as they come
  wait $pid; rc=$?
  [ $rc -eq 0 ] || echo "$0: job $first failed (status $rc), see $l" >&2
  exit $rc
fi
pids=()
for ((j = first; j <= last; j++)); do run_one "$j" "$@" & pids+=($!); done
failed=0
for ((j = first; j <= last; j++)); do
  if ! wait "${pids[$((j - first))]}"; then
    failed=$((failed + 1)); l=${log//JOB/$j}
    echo "$0: job $j of $first..$last failed, see $l; its last lines:" >&2
    tail -n 5 "$l" | sed 's/^/    /' >&2
  fi
done
[ $failed -eq 0 ] || { echo "$0: $failed of $((last - first + 1)) jobs failed" >&2; exit 1; }

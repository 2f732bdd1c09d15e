# How jobs run (Kaldi's cmd.sh). Every command goes through utils/run_jobs.sh: JOB=1:N with one log
# per job. cmd_backend=local runs the jobs on this machine; cmd_backend=slurm runs each through srun
# with the options below (edit them for your cluster's partitions and accounts), e.g.
#   ./run.sh --cmd-backend slurm --devices 4 --nodes 2 --stage 3
# asks Lightning for 4 devices x 2 nodes and srun for 4 tasks per node; Lightning reads SLURM's
# environment to find its ranks. Inside an salloc/sbatch allocation srun uses it; outside, it submits.
cpu_slurm_opts="--ntasks=1 --cpus-per-task=2 --time=4:00:00"
train_slurm_opts="--cpus-per-task=8 --time=72:00:00"   # + nodes, tasks per node and GPUs from --nodes/--devices
gpu_slurm_opts="--ntasks=1 --gres=gpu:1 --cpus-per-task=4 --time=8:00:00"   # one GPU per job

# cpu_cmd / gpu_cmd / train_cmd JOB=1:N LOG command args...
cpu_cmd() { utils/run_jobs.sh --backend "$cmd_backend" --slurm-opts "$cpu_slurm_opts" "$@"; }
# Extraction, k-means, decoding, search and evaluation: a GPU per job when the recipe has GPUs (--devices N,
# N > 0); the commands take --device auto and use whatever device the job was given.
uses_gpus() { [[ "$devices" =~ ^[0-9]+$ ]] && [ "$devices" -gt 0 ]; }
gpu_cmd() {
  if uses_gpus; then utils/run_jobs.sh --backend "$cmd_backend" --slurm-opts "$gpu_slurm_opts" "$@"; else cpu_cmd "$@"; fi
}
decode_cmd() { gpu_cmd "$@"; }
train_cmd() {
  local per_node=$devices
  [ "$per_node" = auto ] && per_node=1
  utils/run_jobs.sh --backend "$cmd_backend" \
    --slurm-opts "$train_slurm_opts --nodes=$nodes --ntasks-per-node=$per_node --gres=gpu:$per_node" "$@"
}
# the overrides training stages pass to Lightning
trainer_args() { echo "trainer.devices=$devices trainer.num_nodes=$nodes"; }

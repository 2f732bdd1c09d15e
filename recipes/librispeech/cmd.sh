# How jobs run. "run.pl"-style local execution by default; on a cluster, point these at your
# queue wrapper (e.g. train_cmd="srun --gres=gpu:1"). Lightning reads devices/nodes from the config.
export train_cmd=""
export decode_cmd=""

#!/usr/bin/env bash
# LibriSpeech recipe: corpus -> data dirs -> MFCC k-means -> HuBERT iteration 1 -> layer k-means -> iteration 2.
#   ./run.sh [--stage N] [--stop-stage M] [--corpus mini|librispeech] [--nj 2] ...
# Stages:
#   0  corpus: synthesize the built-in mini corpus, or download LibriSpeech (--corpus librispeech)
#   1  Kaldi data dirs (data/<subset>), validated
#   2  MFCC + deltas, k-means (--it1-k) on train, labels for train/dev, PNMI (exp/kmeans/mfcc_k<K>)
#   3  HuBERT iteration 1 on the MFCC labels (--it1-config; exp/hubert_it1, export in exp/hubert_it1/final)
#   4  layer --it2-layer of iteration 1 (and of its untrained copy, the control) -> k-means (--it2-k), PNMI
#   5  HuBERT iteration 2 on those labels (--it2-config; exp/hubert_it2)
#   6  layer features of --model for other tools (exp/feats/<model>/<subset>)
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=mini               # mini (synthetic, offline) | librispeech
preset=mini               # synthetic corpus size: mini (58 min) | tiny (2 min, for tests)
corpus_dir=corpus         # where the corpus lives / is written
train_sets=""             # default per corpus, below
nj=2
it1_k=100                 # MFCC clusters (HuBERT paper: 100)
it1_config=pretrain/hubert_mini       # under conf/ (or a path)
it2_layer=4               # iteration-1 layer clustered for iteration 2
it2_k=500                 # HuBERT paper: 500
it2_config="pretrain/hubert_mini pretrain/hubert_mini_it2"  # later files override earlier ones
pretrain_args=""          # extra key=value overrides for both iterations, e.g. "trainer.devices=4 trainer.strategy=ddp"
model=exp/hubert_it2/final  # stage 6: an exported folder, HF folder, fairseq .pt, or a registered name
layers=6
seed=0
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

case "$corpus" in
  mini) subsets=${train_sets:-"train dev test test-unseen-speakers"}; corpus_root=$corpus_dir/mini ;;
  librispeech) subsets=${train_sets:-"train-clean-100 dev-clean test-clean"}; corpus_root=$corpus_dir/LibriSpeech ;;
  *) echo "$0: --corpus must be mini or librispeech, got '$corpus'" >&2; exit 1 ;;
esac

log() { echo "$(date '+%F %T') [stage $1] ${*:2}"; }
# run "$@" once per rank in the background ({rank} substituted), failing if any job fails
parallel_ranks() {
  local pids=() r
  for ((r = 0; r < nj; r++)); do "${@//\{rank\}/$r}" & pids+=($!); done
  for r in "${pids[@]}"; do wait "$r"; done
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log 0 "corpus ($corpus) -> $corpus_root"
  if [ "$corpus" = mini ]; then
    speechssl corpus synth --out "$corpus_root" --preset "$preset" --seed "$seed" --nj "$nj"
  else
    local/download_librispeech.sh "$corpus_dir" $subsets
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log 1 "data dirs"
  for s in $subsets; do
    speechssl data prep-librispeech --corpus-dir "$corpus_root" --subsets "$s" --out data
    speechssl data validate "data/${s//-/_}"
  done
fi

# kmeans_stage NAME FEATS_DIR(with {subset}) K: learn on train, label train + dev, PNMI on train and dev
kmeans_stage() {
  local name=$1 feats=$2 k=$3 km=exp/kmeans/$1
  if [ ! -f "$km/kmeans.json" ]; then
    speechssl kmeans learn --feats "${feats//\{subset\}/$train_dir}" -k "$k" --out "$km"
  fi
  for d in $train_dir $dev_dir; do
    parallel_ranks speechssl kmeans assign --model "$km" --feats "${feats//\{subset\}/$d}" \
      --out "$km/$d" --nshard "$nj" --rank {rank}
    if [ -f "data/$d/alignments.ctm" ]; then speechssl kmeans eval --labels "$km/$d" --data "data/$d"; fi
  done
}
train_dir=$(echo $subsets | awk '{print $1}'); train_dir=${train_dir//-/_}
dev_dir=$(echo $subsets | awk '{print $2}'); dev_dir=${dev_dir//-/_}

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log 2 "MFCC + deltas -> exp/mfcc; k-means($it1_k) -> exp/kmeans/mfcc_k$it1_k"
  for d in $train_dir $dev_dir; do
    [ -f "exp/mfcc/$d/feats.scp" ] || parallel_ranks speechssl features --data "data/$d" --out "exp/mfcc/$d" \
      --type mfcc --deltas --cmvn utt --nshard "$nj" --rank {rank}
  done
  kmeans_stage "mfcc_k$it1_k" "exp/mfcc/{subset}" "$it1_k"
fi

pretrain() {  # pretrain ITER LABELS_NAME "CONFIG [CONFIG...]"
  local out=exp/hubert_it$1 c configs=()
  for c in $3; do configs+=(--config "$c"); done
  if [ -f "$out/final/model.safetensors" ] && [ -f "$out/summary.json" ]; then
    echo "$out/final exists: iteration $1 done (remove it to retrain)"; return
  fi
  speechssl pretrain hubert "${configs[@]}" data.train="data/$train_dir" data.valid="data/$dev_dir" \
    "data.train_labels=[exp/kmeans/$2/$train_dir]" "data.valid_labels=[exp/kmeans/$2/$dev_dir]" \
    trainer.out_dir="$out" $pretrain_args
}

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log 3 "HuBERT iteration 1 ($it1_config) on mfcc_k$it1_k -> exp/hubert_it1 (resumes if killed)"
  pretrain 1 "mfcc_k$it1_k" "$it1_config"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log 4 "layer $it2_layer of iteration 1 and of its untrained copy -> k-means($it2_k)"
  for m in final init; do
    for d in $train_dir $dev_dir; do
      parallel_ranks speechssl extract --model "exp/hubert_it1/$m" --data "data/$d" --layers "$it2_layer" \
        --format npy --out "exp/feats/hubert_it1_$m/$d" --nshard "$nj" --rank {rank}
    done
  done
  kmeans_stage "hubert_it1_L${it2_layer}_k$it2_k" "exp/feats/hubert_it1_final/{subset}:$it2_layer" "$it2_k"
  kmeans_stage "untrained_L${it2_layer}_k$it2_k" "exp/feats/hubert_it1_init/{subset}:$it2_layer" "$it2_k"
  kmeans_stage "mfcc_k$it2_k" "exp/mfcc/{subset}" "$it2_k"  # MFCC at the same k, for the comparison
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log 5 "HuBERT iteration 2 ($it2_config) on hubert_it1_L${it2_layer}_k$it2_k -> exp/hubert_it2"
  pretrain 2 "hubert_it1_L${it2_layer}_k$it2_k" "$it2_config"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log 6 "layer $layers features of $model"
  name=$(basename "$(dirname "$model")")_$(basename "$model")
  for s in $subsets; do
    d=${s//-/_}
    parallel_ranks speechssl extract --model "$model" --data "data/$d" --layers "$layers" \
      --out "exp/feats/$name/$d" --nshard "$nj" --rank {rank}
  done
fi
log done "stages $stage..$stop_stage finished"

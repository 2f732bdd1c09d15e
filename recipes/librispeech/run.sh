#!/usr/bin/env bash
# LibriSpeech recipe: corpus -> data dirs -> features -> pretraining -> feature extraction.
#   ./run.sh [--stage N] [--stop-stage M] [--corpus mini|librispeech] [--nj 2] ...
# Stages:
#   0  corpus: synthesize the built-in mini corpus, or download LibriSpeech (--corpus librispeech)
#   1  Kaldi data dirs (data/<subset>), validated
#   2  MFCC + deltas for the first HuBERT iteration's k-means (exp/mfcc/<subset>)
#   3  HuBERT pretraining                 (arrives with issue 4)
#   4  layer features of --model for k-means / TTS (exp/feats/<model>/<subset>)
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=mini               # mini (synthetic, offline) | librispeech
preset=mini               # synthetic corpus size: mini (58 min) | tiny (2 min, for tests)
corpus_dir=corpus         # where the corpus lives / is written
train_sets=""             # default per corpus, below
nj=2
model=hubert_small        # stage 4: an exported folder, HF folder, fairseq .pt, or a registered name
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

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log 2 "MFCC + deltas"
  for s in $subsets; do
    d=${s//-/_}
    parallel_ranks speechssl features --data "data/$d" --out "exp/mfcc/$d" --type mfcc --deltas \
      --cmvn utt --nshard "$nj" --rank {rank}
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log 3 "HuBERT pretraining is not implemented yet (issue 4): stop here with --stop-stage 2" >&2
  exit 1
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log 4 "layer $layers features of $model"
  name=$(basename "$model")
  for s in $subsets; do
    d=${s//-/_}
    parallel_ranks speechssl extract --model "$model" --data "data/$d" --layers "$layers" \
      --out "exp/feats/$name/$d" --nshard "$nj" --rank {rank}
  done
fi
log done "stages $stage..$stop_stage finished"

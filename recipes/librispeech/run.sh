#!/usr/bin/env bash
# LibriSpeech recipe (Kaldi/ESPnet style): corpus -> data dirs -> MFCC k-means -> HuBERT iteration 1 ->
# layer k-means -> iteration 2 -> w2v-BERT -> LightHuBERT -> CTC ASR -> SUPERB -> results.
#   ./run.sh [--stage N] [--stop-stage M] [--corpus mini|tiny|librispeech|mini_librispeech] [--config conf/long.conf] ...
# Every variable below is an option (--it1-k 50 sets it1_k=50; unknown options fail). --config FILE reads
# name=value lines at that point of the command line. The defaults are the demo: the mini corpus, every
# stage, under an hour on 2 CPU cores; --config conf/long.conf runs the longer configs behind the README's
# figures; --corpus tiny is the few-minute smoke run (conf/tiny.conf).
# Stages:
#   0  corpus: synthesize the mini/tiny corpus, or LibriSpeech (--corpus librispeech) / Mini LibriSpeech + Libri-light
#      (--corpus mini_librispeech, real speech): an existing copy under --corpus-dir (the folder holding
#      LibriSpeech/ or LibriSpeech/ itself), downloaded first with --download true
#   1  Kaldi data dirs (data/<subset>), validated; mini_librispeech: readers --heldout-dev / --heldout-test leave
#      train-clean-5 for data/dev, data/test, and the Libri-light sets (--librilight-sets) -> data/librilight_*
#   2  MFCC + deltas, k-means (--it1-k) on train, labels for train/dev, PNMI (exp/kmeans/mfcc_k<K>)
#   3  HuBERT iteration 1 on the MFCC labels (--it1-config; exp/hubert_it1, export in exp/hubert_it1/final)
#   4  layer --it2-layer of iteration 1 (and of its untrained copy, the control) -> k-means (--it2-k), PNMI
#   5  HuBERT iteration 2 on those labels (--it2-config; exp/hubert_it2)
#   6  w2v-BERT pretraining, contrastive + MLM end to end (--w2v-bert-config; exp/w2v_bert/final)
#   7  LightHuBERT from HuBERT iteration 2: stage-1 distillation (--lighthubert-config), once-for-all
#      stage 2 (--lighthubert-stage2-config), subnet search on dev (--lighthubert-budget parameters), and
#      exports of the max / default / min / searched subnets (exp/lighthubert/{max,default,min,searched})
#   8  CTC ASR fine-tuning of each --asr-upstreams model (--asr-config), word n-gram LM from the train
#      transcripts, decoding greedy and with beam search + LM (its weight and word score swept on dev, then
#      used on test and the unseen speakers' split): exp/asr/<name>/decode_<split>_{greedy,beam_lm}
#   9  SUPERB (--superb-tasks of PR, KS, IC, SID, ASV, ASR) for FBANK and each --superb-upstreams model:
#      task dirs in superb/, results in exp/superb/<name>/<task>/, the table exp/superb/results.{md,json}
#  10  results: exp/RESULTS.md + exp/results.json (WER, SUPERB, PNMI, subnets, parameters, time per stage, plots)
#  11  (only when asked: --stage 11) layer features of --model for other tools (exp/feats/<model>/<subset>)
#  12  (only when asked: --stop-stage 12) WavThruVec on --tts-upstream: the vocoder (--tts-vocoder-config: vec2wav,
#      or vec2mel + Griffin-Lim for tts/vec2mel_*) and text2vec (--tts-acoustic-config) -> exp/tts/{vec2wav|vec2mel,
#      text2vec}; tts eval -> exp/tts/eval; vec2wav's resynthesis against training steps -> exp/tts/curve; results again
#  13  (only when asked: --stop-stage 13) active speaker detection on the synthetic audio-visual set made from the
#      corpus (asd/): each --asd-models NAME=CONFIG[:UPSTREAM] trained and scored (AP) -> exp/asd/<name>; results
# Jobs run through cmd.sh (--cmd-backend local|slurm, --devices N, --nodes M); logs go next to the outputs.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=10
corpus=mini               # mini (synthetic, 58 min, offline) | tiny (synthetic, 2 min) | librispeech | mini_librispeech
                          # (real: Mini LibriSpeech train-clean-5 + Libri-light's limited supervision, conf/mini_librispeech.conf)
corpus_dir=corpus         # where the corpus lives / is written
download=false            # librispeech: fetch the subsets from openslr.org first
train_sets=""             # default per corpus, below
heldout_dev=""            # mini_librispeech: readers held out of train-clean-5 as data/dev (unless dev-clean-2 is there)
heldout_test=""           # ... and as data/test
align_sets=""             # mini_librispeech: data dirs given PocketSphinx phone alignments in stage 1 (for PNMI)
librilight_sets=""        # mini_librispeech: Libri-light sets prepared as data/librilight_<set> (10min 1h 1h/K 9h 10h)
nj=2                      # parallel jobs for features, labels and extraction
cmd_backend=auto          # auto (slurm where srun exists, else local) | local | slurm (cmd.sh)
devices=auto              # Lightning devices per node for the training stages
nodes=1
it1_k=100                 # MFCC clusters (HuBERT paper: 100)
kmeans_args="--restarts 1 --niter 50"  # for `speechssl kmeans learn` (its defaults: 3 restarts x 100 iterations)
it1_config="pretrain/hubert_mini pretrain/hubert_demo"   # under conf/ (or paths); later files override earlier ones
it2_layer=4               # iteration-1 layer clustered for iteration 2
it2_k=500                 # HuBERT paper: 500
it2_config="pretrain/hubert_mini pretrain/hubert_mini_it2 pretrain/hubert_demo_it2"
pretrain_args=""          # extra key=value overrides for both iterations, e.g. "trainer.strategy=ddp"
shards=false              # HuBERT iterations train from WebDataset shards of the training set and its labels (written
                          # before each iteration, shards/<labels>), not from the data dir: no process holds every label
shard_hours=1.0           # audio per shard
w2v_bert_config="pretrain/w2v_bert_mini pretrain/w2v_bert_demo"
w2v_bert_args=""          # extra key=value overrides for w2v-BERT pretraining
lighthubert_config="distill/lighthubert_mini_stage1 distill/lighthubert_demo_stage1"
lighthubert_stage2_config="distill/lighthubert_mini_stage2 distill/lighthubert_demo_stage2"  # on the stage-1 configs
lighthubert_args=""       # extra key=value overrides for both distillation stages
lighthubert_budget=default  # stage 7 search: parameter budget (a number, or max / default / min: that subnet's size)
lighthubert_search="--random 12 --population 8 --generations 2"
asr_upstreams="w2v_bert=exp/w2v_bert/final"  # stage 8: NAME=PATH ... (the demo fine-tunes its best content upstream)
asr_config="finetune/asr_mini finetune/asr_demo"
asr_train=""              # stage 8: the labelled data dir the CTC models train on (default: the training set)
asr_exp=exp/asr           # stage 8: where its models and decodes go (e.g. exp/asr_10min for a second label set)
asr_test_sets=""          # stage 8: more data dirs decoded beside dev and test (e.g. librilight_1h_5)
asr_args=""               # extra key=value overrides for fine-tuning
lm_order=3
lm_weights="0.1 0.2 0.3 0.5"  # stage 8: beam + LM decoding sweeps these on dev and decodes test with the best
word_scores="0 1 2 3"
superb_tasks="pr ks ic sid asv"  # of `speechssl superb --list-tasks` (the mini corpus has all but ER; the demo leaves out
                          # SUPERB ASR: its BiLSTM took 4-11 minutes per upstream on 2 cores when packed; unpacked since
                          # 2026-12-07, not yet re-timed in the demo)
superb_upstreams="hubert_it2=exp/hubert_it2/final w2v_bert=exp/w2v_bert/final lighthubert_searched=exp/lighthubert/searched"
                          # the untrained controls are one option away (12 minutes more on 2 cores without bf16):
                          # --superb-upstreams "... hubert_untrained=exp/hubert_it1/init w2v_bert_untrained=exp/w2v_bert/init"
superb_args="trainer.max_steps=400"  # extra key=value overrides for every SUPERB task: the demo's 400 head updates
                          # (PR, SID and ASV default to 1,500, 1,000 and 500) keep it within 90 minutes without bf16
tts_upstream=exp/w2v_bert/final  # stage 12: the upstream WavThruVec vocodes (25 Hz, log-mel in)
tts_vocoder_config=tts/vec2mel_mini  # one or more configs, later ones on top; the HiFi-GAN: "tts/vec2wav_mini"
                          # (its rates need a 50 Hz upstream: --tts-upstream exp/hubert_it2/final --tts-args layer=3)
tts_acoustic_config=tts/text2vec_mini
tts_args="layer=2"        # extra key=value overrides for both WavThruVec stages (both must vocode one layer)
tts_vocoder_args=""       # ... for the vocoder only, e.g. "optim.discriminator_start_steps=0"
tts_acoustic_args=""      # ... for text2vec only, e.g. "data.durations=mas"
tts_clean_targets=true    # stage 12, synthetic corpora: the vocoder learns the corpus's clean twin (no reverberation,
                          # no noise; `corpus synth --preset <corpus>-clean`, data/clean/) from the degraded audio's features
tts_asr=exp/asr/w2v_bert/final  # stage 12: the ASR that scores the speech (skipped if absent; with stage 8's LM)
tts_eval_utts=128         # stage 12: test utterances judged (32 of them move WER by about +-3 points between runs)
asd_clips=200             # stage 13: synthetic training clips (val and test get a fifth each)
asd_models="visual=visual_mini mfcc=mfcc_mini hubert_it2=ssl_mini:exp/hubert_it2/final w2v_bert=ssl_mini:exp/w2v_bert/final hubert_it2_finetuned=ssl_finetune_mini:exp/hubert_it2/final"
asd_args=""               # extra key=value overrides for every ASD model
model=exp/hubert_it2/final  # stage 11: an exported folder, HF folder, fairseq .pt, or a registered name
layers=6
seed=0

train_combine=""          # NAME=A,B,C: stage 1 combines data/A, data/B, data/C into data/NAME, the training set

# --corpus tiny and --corpus librispeech bring their own defaults (conf/tiny.conf, conf/librispeech.conf:
# the paper-size configs); options given on the command line still win
prev=""
for a in "$@"; do
  for c in tiny librispeech mini_librispeech; do
    if [ "$a" = --corpus=$c ] || { [ "$prev" = --corpus ] && [ "$a" = $c ]; }; then set -- --config conf/$c.conf "$@"; break 2; fi
  done
  prev=$a
done
command_line="$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (options are --name value)" >&2; exit 1; }

preset=""
case "$corpus" in
  mini|tiny) subsets=${train_sets:-"train dev test test-unseen-speakers"}; corpus_root=$corpus_dir/$corpus; preset=$corpus ;;
  librispeech) subsets=${train_sets:-"train-clean-100 dev-clean test-clean"}; corpus_root=$corpus_dir/LibriSpeech
    [ -d "$corpus_dir/$(echo $subsets | awk '{print $1}')" ] && corpus_root=$corpus_dir ;;  # --corpus-dir .../LibriSpeech
  mini_librispeech) subsets="train dev test"; corpus_root=$corpus_dir/LibriSpeech
    [ -d "$corpus_dir/train-clean-5" ] && corpus_root=$corpus_dir ;;
  *) echo "$0: --corpus must be mini, tiny, librispeech or mini_librispeech, got '$corpus'" >&2; exit 1 ;;
esac
case "$cmd_backend" in
  auto) if command -v srun >/dev/null 2>&1; then cmd_backend=slurm; else cmd_backend=local; fi ;;
  local|slurm) ;;
  *) echo "$0: --cmd-backend must be auto, local or slurm, got '$cmd_backend'" >&2; exit 1 ;;
esac
if [ "$cmd_backend" = local ]; then   # local jobs beyond the cores only queue (and each pays the start-up)
  cores=$(nproc 2>/dev/null || echo 1)
  if [ "$nj" -gt "$cores" ]; then echo "$0: --nj $nj capped at $cores, the local cores (cmd_backend=local)"; nj=$cores; fi
fi
if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then   # a misspelt task fails now, not after stages 0-8
  known_tasks=$(speechssl superb --list-tasks) || exit 1
  for t in $superb_tasks; do
    case " $known_tasks " in *" $t "*) ;; *) echo "$0: --superb-tasks: unknown task '$t' ($known_tasks)" >&2; exit 1 ;; esac
  done
fi

mkdir -p exp
echo "$(date '+%F %T') $command_line" >> exp/recipe_runs.log
log() { echo "$(date '+%F %T') [stage $1] ${*:2}"; }
stage_t0=0
stage_what=""
begin() { stage_t0=$SECONDS; stage_what=${2%% (*}; stage_what=${stage_what%% ->*}; log "$@"; }
finish() {  # wall time of a finished stage and what it did, summed over runs by stage 10
  [ -f exp/stage_times.tsv ] || printf 'stage\tseconds\tfinished\twhat\n' > exp/stage_times.tsv
  printf '%s\t%s\t%s\t%s\n' "$1" $((SECONDS - stage_t0)) "$(date '+%F %T')" "$stage_what" >> exp/stage_times.tsv
}
runs() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
configs_of() { local c; for c in $1; do printf -- '--config\n%s\n' "$c"; done; }

train_dir=$(echo $subsets | awk '{print $1}'); train_dir=${train_dir//-/_}
[ -z "$train_combine" ] || train_dir=${train_combine%%=*}
dev_dir=$(echo $subsets | awk '{print $2}'); dev_dir=${dev_dir//-/_}
test_dir=$(echo $subsets | awk '{print $3}'); test_dir=${test_dir//-/_}

if runs 0; then
  begin 0 "corpus ($corpus) -> $corpus_root"
  if [ -n "$preset" ]; then
    if [ -f "$corpus_root/corpus.json" ]; then echo "$corpus_root exists (remove it to resynthesize)"
    else cpu_cmd JOB=1:1 exp/log/corpus.log speechssl corpus synth --out "$corpus_root" --preset "$preset" --seed "$seed" --nj "$nj"; fi
  elif [ "$corpus" = mini_librispeech ]; then
    [ "$download" = true ] && local/download_mini_librispeech.sh "$corpus_dir"
    [ -d "$corpus_root/train-clean-5" ] || { echo "$0: no train-clean-5 in $corpus_dir or $corpus_dir/LibriSpeech:" \
      "point --corpus-dir at Mini LibriSpeech, or pass --download true (docs/real-speech.md)" >&2; exit 1; }
    [ -z "$librilight_sets" ] || [ -d "$corpus_dir/librispeech_finetuning/1h" ] || [ -d "$corpus_root/../librispeech_finetuning/1h" ] || {
      echo "$0: no librispeech_finetuning/1h beside train-clean-5 under $corpus_dir (Libri-light's limited supervision;" \
        "docs/real-speech.md), or pass --librilight-sets ''" >&2; exit 1; }
  elif [ "$download" = true ]; then
    local/download_librispeech.sh "$corpus_dir" $subsets
  else
    for s in $subsets; do
      [ -d "$corpus_root/$s" ] || { echo "$0: $corpus_root/$s not found: point --corpus-dir at a LibriSpeech copy, or pass --download true" >&2; exit 1; }
    done
  fi
  finish 0
fi

if runs 1; then
  begin 1 "data dirs -> data/"
  if [ "$corpus" = mini_librispeech ]; then
    speechssl data prep-librispeech --corpus-dir "$corpus_root" --subsets train-clean-5 --out data
    held=(--split "test=${heldout_test// /,}")
    if [ -d "$corpus_root/dev-clean-2" ]; then speechssl data prep-librispeech --corpus-dir "$corpus_root" --subsets dev-clean-2 --out data
      rm -rf data/dev; cp -r data/dev_clean_2 data/dev
    else held+=(--split "dev=${heldout_dev// /,}"); fi
    speechssl data split-readers --data data/train_clean_5 --out data "${held[@]}"
    ll_root=$corpus_dir; [ -d "$ll_root/librispeech_finetuning" ] || ll_root=$corpus_root/..
    [ -z "$librilight_sets" ] || speechssl data prep-librilight --corpus-dir "$ll_root" --sets "${librilight_sets// /,}" --out data
    for s in $align_sets; do   # PocketSphinx phone alignments, so PNMI works on real speech
      [ -f "data/$s/alignments.ctm" ] || cpu_cmd JOB=1:1 "data/$s/log/align.log" speechssl data align --data "data/$s"
    done
  fi
  for s in $subsets; do
    [ "$corpus" = mini_librispeech ] && { speechssl data validate "data/$s"; continue; }
    speechssl data prep-librispeech --corpus-dir "$corpus_root" --subsets "$s" --out data
    speechssl data validate "data/${s//-/_}"
  done
  if [ -n "$train_combine" ]; then   # e.g. train_960=train_clean_100,train_clean_360,train_other_500
    parts=${train_combine#*=}
    speechssl data combine "data/$train_dir" $(for p in ${parts//,/ }; do echo "data/$p"; done)
  fi
  finish 1
fi

# kmeans_stage NAME FEATS_DIR(with {subset}) K: learn on train, label train + dev, PNMI on train and dev
kmeans_stage() {
  local name=$1 feats=$2 k=$3 km=exp/kmeans/$1 d
  if [ ! -f "$km/kmeans.json" ]; then
    gpu_cmd JOB=1:1 "$km/log/learn.log" speechssl kmeans learn --feats "${feats//\{subset\}/$train_dir}" -k "$k" \
      --out "$km" $kmeans_args
  fi
  for d in $train_dir $dev_dir; do
    [ -f "$km/$d/labels.txt" ] || gpu_cmd JOB=1:$nj "$km/$d/log/assign.JOB.log" speechssl kmeans assign --model "$km" \
      --feats "${feats//\{subset\}/$d}" --out "$km/$d" --nshard "$nj" --job JOB
    if [ -f "data/$d/alignments.ctm" ]; then speechssl kmeans eval --labels "$km/$d" --data "data/$d"; fi
  done
}

if runs 2; then
  begin 2 "MFCC + deltas -> exp/mfcc; k-means($it1_k) -> exp/kmeans/mfcc_k$it1_k"
  # float-scale samples, as fairseq's HuBERT recipe computes its MFCC targets (dump_mfcc_feature.py)
  for d in $train_dir $dev_dir; do
    [ -f "exp/mfcc/$d/feats.scp" ] || cpu_cmd JOB=1:$nj "exp/mfcc/$d/log/mfcc.JOB.log" speechssl features --data "data/$d" \
      --out "exp/mfcc/$d" --type mfcc --deltas --cmvn utt --scale float --nshard "$nj" --job JOB
  done
  kmeans_stage "mfcc_k$it1_k" "exp/mfcc/{subset}" "$it1_k"
  finish 2
fi

pretrain() {  # pretrain ITER LABELS_NAME "CONFIG [CONFIG...]"
  local out=exp/hubert_it$1 configs
  mapfile -t configs < <(configs_of "$3")
  if [ -f "$out/final/model.safetensors" ] && [ -f "$out/summary.json" ]; then
    echo "$out/final exists: iteration $1 done (remove it to retrain)"; return
  fi
  local train=(data.train="data/$train_dir" "data.train_labels=[exp/kmeans/$2/$train_dir]")
  if [ "$shards" = true ]; then  # the training set and its labels packed once, then streamed
    [ -f "shards/$2/index.json" ] || cpu_cmd JOB=1:1 "shards/$2/log/shard.log" speechssl data shard --data "data/$train_dir" \
      --labels "exp/kmeans/$2/$train_dir" --out "shards/$2" --shard-hours "$shard_hours"
    train=(data.shards="shards/$2" "data.train_labels=[]")
  fi
  train_cmd JOB=1:1 "$out/log/train.log" speechssl pretrain hubert "${configs[@]}" "${train[@]}" \
    data.valid="data/$dev_dir" "data.valid_labels=[exp/kmeans/$2/$dev_dir]" \
    trainer.out_dir="$out" $(trainer_args) $pretrain_args
}

if runs 3; then
  begin 3 "HuBERT iteration 1 ($it1_config) on mfcc_k$it1_k -> exp/hubert_it1 (resumes if killed)"
  pretrain 1 "mfcc_k$it1_k" "$it1_config"
  finish 3
fi

if runs 4; then
  begin 4 "layer $it2_layer of iteration 1 and of its untrained copy -> k-means($it2_k)"
  for m in final init; do
    for d in $train_dir $dev_dir; do
      out=exp/feats/hubert_it1_$m/$d  # extraction skips utterances already done
      gpu_cmd JOB=1:$nj "$out/log/extract.JOB.log" speechssl extract --model "exp/hubert_it1/$m" --data "data/$d" --layers "$it2_layer" --format npy --out "$out" \
        --nshard "$nj" --job JOB
    done
  done
  kmeans_stage "hubert_it1_L${it2_layer}_k$it2_k" "exp/feats/hubert_it1_final/{subset}:$it2_layer" "$it2_k"
  kmeans_stage "untrained_L${it2_layer}_k$it2_k" "exp/feats/hubert_it1_init/{subset}:$it2_layer" "$it2_k"
  kmeans_stage "mfcc_k$it2_k" "exp/mfcc/{subset}" "$it2_k"  # MFCC at the same k, for the comparison
  # ... and read at iteration 1's frame rate: PNMI rises as frames get fewer, so compare at one rate
  it1_rate=$(speechssl kmeans info "exp/kmeans/hubert_it1_L${it2_layer}_k$it2_k" --field frame_rate)
  for d in $train_dir $dev_dir; do
    if [ -f "data/$d/alignments.ctm" ]; then
      speechssl kmeans eval --labels "exp/kmeans/mfcc_k$it2_k/$d" --data "data/$d" --at-rate "$it1_rate"
    fi
  done
  finish 4
fi

if runs 5; then
  begin 5 "HuBERT iteration 2 ($it2_config) on hubert_it1_L${it2_layer}_k$it2_k -> exp/hubert_it2"
  pretrain 2 "hubert_it1_L${it2_layer}_k$it2_k" "$it2_config"
  finish 5
fi

if runs 6; then
  begin 6 "w2v-BERT ($w2v_bert_config) -> exp/w2v_bert (resumes if killed)"
  if [ -f exp/w2v_bert/final/model.safetensors ] && [ -f exp/w2v_bert/summary.json ]; then
    echo "exp/w2v_bert/final exists: w2v-BERT done (remove it to retrain)"
  else
    mapfile -t configs < <(configs_of "$w2v_bert_config")
    train_cmd JOB=1:1 exp/w2v_bert/log/train.log speechssl pretrain w2v-bert "${configs[@]}" data.train="data/$train_dir" \
      data.valid="data/$dev_dir" trainer.out_dir=exp/w2v_bert $(trainer_args) $w2v_bert_args
  fi
  finish 6
fi

if runs 7; then
  begin 7 "LightHuBERT from exp/hubert_it2/final -> exp/lighthubert"
  lh=exp/lighthubert
  for st in 1 2; do
    log 7 "LightHuBERT stage $st distillation -> $lh/stage$st (resumes if killed)"
    if [ -f $lh/stage$st/final/lighthubert.yaml ] && [ -f $lh/stage$st/summary.json ]; then
      echo "$lh/stage$st/final exists: stage $st done (remove it to retrain)"
      continue
    fi
    mapfile -t configs < <(configs_of "$lighthubert_config"; [ $st = 2 ] && configs_of "$lighthubert_stage2_config")
    train_cmd JOB=1:1 $lh/stage$st/log/train.log speechssl distill lighthubert "${configs[@]}" teacher=exp/hubert_it2/final \
      data.train="data/$train_dir" data.valid="data/$dev_dir" trainer.out_dir=$lh/stage$st $(trainer_args) $lighthubert_args
  done
  log 7 "subnet search on data/$dev_dir within $lighthubert_budget parameters -> $lh/search (table, best.json, pareto.png)"
  if [ ! -f $lh/search/best.json ]; then
    gpu_cmd JOB=1:1 $lh/search/log/search.log speechssl lighthubert search --supernet $lh/stage2/final --data "data/$dev_dir" \
      --out $lh/search --max-params "$lighthubert_budget" --no-progress $lighthubert_search
  fi
  for sub in max default min searched; do
    spec=$sub; [ $sub = searched ] && spec=$lh/search/best.json
    [ -f $lh/$sub/model.safetensors ] || speechssl lighthubert export --supernet $lh/stage2/final --subnet "$spec" --out $lh/$sub
  done
  finish 7
fi

if runs 8; then
  asr_train=${asr_train:-$train_dir}
  begin 8 "CTC ASR on data/$asr_train: $asr_upstreams -> $asr_exp"
  lm=exp/lm/${asr_train}_${lm_order}gram.arpa; [ "$asr_train" = "$train_dir" ] && lm=exp/lm/${lm_order}gram.arpa
  log 8 "word ${lm_order}-gram LM from the fine-tuning transcripts only, data/$asr_train -> $lm"
  [ -f "$lm" ] || speechssl lm ngram --text "data/$asr_train" --order "$lm_order" --out "$lm"
  mapfile -t configs < <(configs_of "$asr_config")
  for spec in $asr_upstreams; do
    name=${spec%%=*}; up=${spec#*=}; out=$asr_exp/$name
    log 8 "CTC fine-tuning of $up ($asr_config) -> $out/final (resumes if killed)"
    if [ -f "$out/final/asr.json" ] && [ -f "$out/summary.json" ]; then
      echo "$out/final exists: fine-tuning done (remove it to retrain)"
    else
      train_cmd JOB=1:1 "$out/log/train.log" speechssl finetune asr "${configs[@]}" model.upstream="$up" \
        data.train="data/$asr_train" data.valid="data/$dev_dir" trainer.out_dir="$out" $(trainer_args) $asr_args
    fi
    splits="$dev_dir $test_dir $asr_test_sets"; [ -d data/test_unseen_speakers ] && splits+=" test_unseen_speakers"
    for s in $splits; do   # greedy everywhere; beam + LM tuned on dev, then test and unseen with dev's choice
      [ -f "$out/decode_${s}_greedy/wer" ] || decode_cmd JOB=1:1 "$out/decode_${s}_greedy/log/decode.log" \
        speechssl decode --model "$out/final" --data "data/$s" --out "$out/decode_${s}_greedy"
      if [ "$s" = "$dev_dir" ]; then lm_opts=(--lm-weight $lm_weights --word-score $word_scores)
      else lm_opts=(--settings-from "$out/decode_${dev_dir}_beam_lm"); fi
      [ -f "$out/decode_${s}_beam_lm/wer" ] || decode_cmd JOB=1:1 "$out/decode_${s}_beam_lm/log/decode.log" \
        speechssl decode --model "$out/final" --data "data/$s" --out "$out/decode_${s}_beam_lm" --beam 20 --lm "$lm" \
        "${lm_opts[@]}"
      grep -h WER "$out/decode_${s}_greedy/wer" "$out/decode_${s}_beam_lm/wer"
    done
  done
  finish 8
fi

if runs 9; then
  begin 9 "SUPERB ($superb_tasks) for fbank $superb_upstreams -> exp/superb"
  if [ -n "$preset" ] || [ "$corpus" = mini_librispeech ]; then
    layout=mini; [ "$corpus" = mini_librispeech ] && layout=mini_librispeech   # real speech: docs/real-speech.md
    for t in $superb_tasks; do   # each task dir once; a task added later is prepared then
      [ -f superb/$t/task.json ] || speechssl data prep-superb --layout $layout --task $t --src data --out superb
    done
  elif [ ! -d superb ]; then
    echo "$0: stage 9 on LibriSpeech needs the SUPERB task dirs in superb/: make them with" \
         "'speechssl data prep-superb' from each task's corpus (README, 'SUPERB')" >&2; exit 1
  fi
  ups=(--upstream fbank)
  for spec in $superb_upstreams; do ups+=(--upstream "$spec"); done
  for t in $superb_tasks; do
    decode_cmd JOB=1:1 exp/superb/log/$t.log speechssl superb --task $t "${ups[@]}" --tasks-dir superb --out exp/superb \
      trainer.progress_bar=false $superb_args
  done
  speechssl superb --summarize-only --out exp/superb
  finish 9
fi

if runs 10; then
  begin 10 "results -> exp/RESULTS.md, exp/results.json"
  speechssl results --exp exp --corpus "$corpus"
  finish 10
fi

if runs 11; then
  begin 11 "layer $layers features of $model"
  name=$(basename "$(dirname "$model")")_$(basename "$model")
  for s in $subsets; do
    d=${s//-/_}
    gpu_cmd JOB=1:$nj "exp/feats/$name/$d/log/extract.JOB.log" speechssl extract --model "$model" --data "data/$d" \
      --layers "$layers" --out "exp/feats/$name/$d" --nshard "$nj" --job JOB
  done
  finish 11
fi
if runs 12; then
  # the vocoder's kind follows its first config: tts/vec2mel_* (log-mel + Griffin-Lim) or tts/vec2wav_* (HiFi-GAN)
  voc=vec2wav; [[ $tts_vocoder_config == tts/vec2mel* ]] && voc=vec2mel
  begin 12 "WavThruVec on $tts_upstream -> exp/tts/{$voc,text2vec,eval} (resumes if killed)"
  targets=(); clean_eval=()
  if [ -n "$preset" ] && [ "$tts_clean_targets" = true ] && [ -z "$train_combine" ]; then
    clean_root=$corpus_dir/$corpus-clean   # the same utterances, sample for sample, before reverberation and noise
    [ -f "$clean_root/corpus.json" ] || cpu_cmd JOB=1:1 exp/log/corpus_clean.log speechssl corpus synth \
      --out "$clean_root" --preset "$preset-clean" --seed "$seed" --nj "$nj"
    for d in $train_dir $dev_dir $test_dir; do
      [ -f data/clean/$d/wav.scp ] || speechssl data prep-librispeech --corpus-dir "$clean_root" --subsets "$d" --out data/clean
    done
    targets=(data.target_train=data/clean/$train_dir data.target_valid=data/clean/$dev_dir)
    clean_eval=(--clean-data data/clean/$test_dir)   # tts eval: the clean audio's floor and MCD too
  fi
  for part in vocoder acoustic; do
    out=exp/tts/$voc; cfg=$tts_vocoder_config; marker=vocoder.yaml; extra=("${targets[@]}" $tts_vocoder_args)
    command=vocoder; [ $voc = vec2mel ] && command=mel-vocoder; features=()
    if [ $part = acoustic ]; then   # text2vec reads the layer the vocoder extracted (either vocoder's: the same layer)
      out=exp/tts/text2vec; cfg=$tts_acoustic_config; marker=acoustic.yaml; command=acoustic
      extra=($tts_acoustic_args); features=(data.features=exp/tts/$voc/features)
    fi
    mapfile -t configs < <(configs_of "$cfg")   # e.g. --tts-vocoder-config "tts/vec2wav_mini tts/vec2wav_mini_units"
    # what makes the model (not where it runs, nor which cache of the same features it read): a finished model
    # made otherwise is refused, not silently reused
    made_by="tts train-$command ${configs[*]} upstream=$tts_upstream data.train=data/$train_dir data.valid=data/$dev_dir ${extra[*]} $tts_args"
    if [ -f $out/final/$marker ] && [ -f $out/summary.json ]; then
      if [ -f $out/made_by ] && [ "$(cat $out/made_by)" != "$made_by" ]; then
        echo "$0: $out was trained as '$(cat $out/made_by)', now asked for '$made_by': remove $out to retrain" >&2; exit 1
      fi
      echo "$out/final exists: $part done (remove it to retrain)"; continue
    fi
    train_cmd JOB=1:1 $out/log/train.log speechssl tts train-$command "${configs[@]}" upstream="$tts_upstream" \
      data.train="data/$train_dir" data.valid="data/$dev_dir" trainer.out_dir=$out "${features[@]}" "${extra[@]}" \
      $(trainer_args) $tts_args
    echo "$made_by" > $out/made_by
  done
  refs=data/$dev_dir; [ -d data/test_unseen_speakers ] && refs=data/test_unseen_speakers
  asr=(); [ -f "$tts_asr/asr.json" ] && asr=(--asr "$tts_asr")
  lm=exp/lm/${lm_order}gram.arpa; [ -f "$lm" ] && [ ${#asr[@]} -gt 0 ] && asr+=(--asr-beam 20 --asr-lm "$lm")
  tuned=$(dirname "$tts_asr")/decode_${dev_dir}_beam_lm   # the LM weight and word score stage 8 chose on dev
  [ -f "$tuned/tuning.json" ] && [ ${#asr[@]} -gt 2 ] && asr+=(--asr-settings-from "$tuned")
  # an evaluation is reused only if it had these settings and is newer than both models (make's rule: a
  # retrained vocoder or text2vec is scored again)
  ev=exp/tts/eval/tts_eval.json
  settings="vocoder=exp/tts/$voc/final max_utts=$tts_eval_utts asr=${asr[*]} ${clean_eval[*]}"
  if ! { [ "$(cat exp/tts/eval/settings 2>/dev/null)" = "$settings" ] && [ $ev -nt exp/tts/$voc/final/model.safetensors ] &&
         [ $ev -nt exp/tts/text2vec/final/model.safetensors ]; }; then
    decode_cmd JOB=1:1 exp/tts/eval/log/eval.log speechssl tts eval --vocoder exp/tts/$voc/final \
      --acoustic exp/tts/text2vec/final "${asr[@]}" --data "data/$test_dir" --ref-data "$refs" \
      --max-utts "$tts_eval_utts" "${clean_eval[@]}" --out exp/tts/eval
    echo "$settings" > exp/tts/eval/settings
  fi
  if [ ! -d exp/tts/$voc/snapshots ]; then echo "no vocoder snapshots (vec2mel, or snapshot_every_steps=0): no curve"
  elif [ ! -f exp/tts/curve/curve.json ]; then decode_cmd JOB=1:1 exp/tts/curve/log/curve.log speechssl tts curve \
    --snapshots exp/tts/$voc/snapshots "${asr[@]}" --data "data/$test_dir" --out exp/tts/curve
  fi
  finish 12
  speechssl results --exp exp --corpus "$corpus"
fi
if runs 13; then
  begin 13 "active speaker detection: synthetic set -> asd/, models $asd_models -> exp/asd"
  [ -f asd/csv/test_orig.csv ] || cpu_cmd JOB=1:1 exp/asd/log/prepare.log speechssl asd prepare --synthetic --data data \
    --clips "$asd_clips" --out asd
  for spec in $asd_models; do
    name=${spec%%=*}; rest=${spec#*=}; cfg=${rest%%:*}; up=""; [ "$rest" != "$cfg" ] && up=upstream=${rest#*:}
    out=exp/asd/$name
    if [ -f $out/final/asd.yaml ] && [ -f $out/summary.json ]; then echo "$out/final exists: $name done"
    else
      train_cmd JOB=1:1 $out/log/train.log speechssl asd train --config "asd/$cfg" $up data.root=asd trainer.out_dir=$out \
        $(trainer_args) $asd_args
    fi
    [ -f $out/eval/test_results.json ] || gpu_cmd JOB=1:1 $out/eval/log/eval.log speechssl asd eval --model $out/final --root asd --split test --out $out/eval
  done
  finish 13
  speechssl results --exp exp --corpus "$corpus"     # after finish: the summary holds this stage's time
fi
log done "stages $stage..$stop_stage finished"
[ "$stop_stage" -lt 10 ] || [ "$stage" -gt 10 ] || echo "results: $(pwd)/exp/RESULTS.md"

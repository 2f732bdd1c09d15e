#!/usr/bin/env bash
# Build the reference venv for the cross-check (make refs): fairseq, torchaudio's pure-Python parts and
# s3prl on the same CPU torch as speechssl, offline from the package registry. Nothing here is a
# dependency of speechssl; the venv lives in $REFS_VENV (default .refs/venv, ignored by git).
#
#   tools/refs/build.sh            # about 6 minutes on 2 cores (fairseq compiles its C++/Cython parts)
#   REFS_VENV=/path tools/refs/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
REFS_VENV=${REFS_VENV:-.refs/venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
FAIRSEQ_SPEC=${FAIRSEQ_SPEC:-fairseq-fixed==0.12.3.1}
TORCHAUDIO_SPEC=${TORCHAUDIO_SPEC:-torchaudio==2.11.0}
S3PRL_SPEC=${S3PRL_SPEC:-s3prl==0.4.18}

say() { echo "[refs] $*"; }
[ -x "$REFS_VENV/bin/python" ] || { say "venv $REFS_VENV"; "$PYTHON" -m venv "$REFS_VENV"; }
PIP=("$REFS_VENV/bin/python" -m pip install -q)
"${PIP[@]}" --upgrade pip
# torch first and pinned (the CPU build); everything after must not replace it
"${PIP[@]}" "$TORCH_SPEC"
say "torchaudio: the Python parts only (its PyPI build links CUDA; the .so files are moved aside)"
"${PIP[@]}" --no-deps "$TORCHAUDIO_SPEC"
TA_LIB=$("$REFS_VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("torchaudio")
print(pathlib.Path(spec.origin).parent / "lib")
PY
)
if compgen -G "$TA_LIB/*.so" > /dev/null; then mkdir -p "$TA_LIB.aside" && mv "$TA_LIB"/*.so "$TA_LIB.aside/"; fi
say "fairseq ($FAIRSEQ_SPEC), built against the installed torch"
"${PIP[@]}" cython "numpy<2.3" setuptools wheel
"${PIP[@]}" --no-build-isolation "$FAIRSEQ_SPEC"
say "s3prl ($S3PRL_SPEC) and what its SUPERB experts import"
"${PIP[@]}" --no-deps "$S3PRL_SPEC"
"${PIP[@]}" tensorboardX catalyst==21.5 librosa editdistance pandas sox 'transformers<5' 'huggingface_hub<1' \
    pyyaml tqdm scikit-learn h5py six
say "speechssl itself (editable) and pytest"
"${PIP[@]}" -e . pytest
# the shim: torchaudio 2.11 dropped set_audio_backend / sox_effects, which s3prl 0.4 calls
SITE=$("$REFS_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp tools/refs/torchaudio_shim.py "$SITE/speechssl_refs_torchaudio_shim.py"
echo "import speechssl_refs_torchaudio_shim" > "$SITE/speechssl_refs_torchaudio_shim.pth"
"$REFS_VENV/bin/python" - <<'PY'
import fairseq, torch, torchaudio, s3prl, speechssl
print(f"[refs] ok: torch {torch.__version__}, fairseq {fairseq.__version__}, torchaudio {torchaudio.__version__}, "
      f"s3prl {s3prl.__version__}")
PY

#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment outside the repository, and use it there:
# --version, the config dry run (named configs resolve from the installed package), and a small layer
# extraction with a test model. A wheel that lacks a file the package needs fails here, not on a user.
set -euo pipefail
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/speechssl-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$repo/.venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$work/dist" "$repo"
wheel=$(ls "$work"/dist/speechssl-*.whl)
echo "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) kB)"
$PYTHON -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
"$work/venv/bin/pip" install -q $TORCH_SPEC
"$work/venv/bin/pip" install -q "$wheel"

cd "$work"   # nothing of the repository on the path from here on
bin="$work/venv/bin"
"$bin/speechssl" --version
"$bin/speechssl" config check | tail -1
"$bin/python" - <<'PY'
import numpy as np, soundfile as sf, os
os.makedirs("data", exist_ok=True)
t = np.arange(16000 * 2) / 16000
sf.write("a.wav", (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 16000)
open("data/wav.scp", "w").write(f"u1 {os.path.abspath('a.wav')}\n")
open("data/utt2spk", "w").write("u1 s1\n")
PY
"$bin/speechssl" convert hubert_small model --random-init >/dev/null
"$bin/speechssl" extract --model model --data data --layers 3 --out feats --format npy
"$bin/python" -c "
import glob, numpy as np
x = np.concatenate([np.load(f) for f in sorted(glob.glob('feats/layer3/*.npy'))])
assert x.shape == (99, 256) and np.isfinite(x).all(), x.shape
print('layer 3 features', x.shape)"
echo "wheel check: ok"

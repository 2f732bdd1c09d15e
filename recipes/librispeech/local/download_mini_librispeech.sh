#!/usr/bin/env bash
# Download and unpack Mini LibriSpeech (OpenSLR 31: train-clean-5, dev-clean-2) and Libri-light's limited-
# supervision set (librispeech_finetuning/) into <corpus-parent>.
# Usage: local/download_mini_librispeech.sh <corpus-parent>
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <corpus-parent>" >&2; exit 1; }
dest=$1
mkdir -p "$dest"
fetch() {  # fetch NAME URL: download and unpack into $dest once
  local name=$1 url=$2 file=$dest/$(basename "$2")
  if [ -f "$dest/.$name.done" ]; then echo "$name: already there"; return; fi
  if ! curl -sfI --max-time 20 "$url" >/dev/null; then
    echo "$0: cannot reach $url (offline?). Download it yourself and unpack it under $dest" \
         "(docs/real-speech.md), or use the built-in synthetic corpus (--corpus mini)." >&2
    exit 1
  fi
  curl -fL --retry 3 -C - -o "$file.part" "$url"
  mv "$file.part" "$file"
  tar -xzf "$file" -C "$dest"
  touch "$dest/.$name.done"
}
fetch train-clean-5 https://www.openslr.org/resources/31/train-clean-5.tar.gz
fetch dev-clean-2 https://www.openslr.org/resources/31/dev-clean-2.tar.gz
fetch librispeech_finetuning https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz

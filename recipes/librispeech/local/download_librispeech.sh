#!/usr/bin/env bash
# Download and unpack LibriSpeech subsets from openslr.org into <corpus-parent>/LibriSpeech.
# Usage: local/download_librispeech.sh <corpus-parent> <subset> [<subset> ...]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <corpus-parent> <subset> [...]" >&2; exit 1; }
dest=$1; shift
mkdir -p "$dest"
for subset in "$@"; do
  if [ -f "$dest/LibriSpeech/.$subset.done" ]; then echo "$subset: already there"; continue; fi
  url="https://www.openslr.org/resources/12/$subset.tar.gz"
  if ! curl -sfI --max-time 20 "$url" >/dev/null; then
    echo "$0: cannot reach $url (offline?). Download $subset.tar.gz yourself, unpack it under" \
         "$dest, or use the built-in synthetic corpus (--corpus mini)." >&2
    exit 1
  fi
  curl -fL --retry 3 -C - -o "$dest/$subset.tar.gz.part" "$url"
  mv "$dest/$subset.tar.gz.part" "$dest/$subset.tar.gz"
  tar -xzf "$dest/$subset.tar.gz" -C "$dest"
  touch "$dest/LibriSpeech/.$subset.done"
done

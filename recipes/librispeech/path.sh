# Put speechssl on PATH: the repository's virtualenv (made by `make install`) if there is one,
# else whatever `speechssl` is already on PATH.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -x "$root/.venv/bin/speechssl" ]; then
  export PATH="$root/.venv/bin:$PATH"
elif ! command -v speechssl >/dev/null; then
  echo "speechssl is not installed: run 'make install' at the repository root" >&2
  return 1 2>/dev/null || exit 1
fi
export PYTHONUNBUFFERED=1

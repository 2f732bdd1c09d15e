#!/usr/bin/env bash
# Turn --some-option value (or --some-option=value) into some_option=value for variables the
# calling script has already defined; --help prints the script's header comment and the defaults.
# Source it after setting defaults:   stage=0; . utils/parse_options.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
      exit 0 ;;
    --*=*)
      name="${1%%=*}"; value="${1#*=}"; shift ;;
    --*)
      name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $name needs a value" >&2; exit 1; fi
      value="$2"; shift 2 ;;
    *) break ;;
  esac
  var="${name#--}"; var="${var//-/_}"
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $name (no variable '$var' in this script)" >&2; exit 1
  fi
  printf -v "$var" '%s' "$value"
done

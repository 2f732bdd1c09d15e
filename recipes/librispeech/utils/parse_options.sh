#!/usr/bin/env bash
# Turn --some-option value (or --some-option=value) into some_option=value for variables the
# calling script has already defined; --help prints the script's header comment and the defaults.
# --config FILE reads FILE at that point of the command line (later options win): lines of
# `name=value` (shell quoting) or `--name value`, `#` comments; an unknown name fails like a
# mistyped option. Source it after setting defaults:   stage=0; . utils/parse_options.sh
_po_set() {  # _po_set NAME VALUE WHERE
  local var="${1#--}"; var="${var//-/_}"
  if [ "$var" = config ]; then _po_read_config "$2"; return; fi
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $1 (no variable '$var' in this script)$3" >&2; exit 1
  fi
  printf -v "$var" '%s' "$2"
}
_po_read_config() {
  local file=$1 line n=0 name value
  [ -f "$file" ] || { echo "$0: --config $file: no such file" >&2; exit 1; }
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line="${line%%#*}"; line="${line#"${line%%[![:space:]]*}"}"; line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] && continue
    case "$line" in
      --*=*) name="${line%%=*}"; value="${line#*=}" ;;
      --*\ *) name="${line%% *}"; value="${line#* }" ;;
      *=*) name="${line%%=*}"; value="${line#*=}" ;;
      *) echo "$0: $file:$n: expected name=value or --name value, got '$line'" >&2; exit 1 ;;
    esac
    value="${value#"${value%%[![:space:]]*}"}"
    eval "value=$value"  # shell quoting as in a sourced file: "a b", 'c d'
    _po_set "$name" "$value" " in $file:$n"
  done < "$file"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
      exit 0 ;;
    --*=*)
      _po_name="${1%%=*}"; _po_value="${1#*=}"; shift ;;
    --*)
      _po_name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $_po_name needs a value" >&2; exit 1; fi
      _po_value="$2"; shift 2 ;;
    *) break ;;
  esac
  _po_set "$_po_name" "$_po_value" ""
done

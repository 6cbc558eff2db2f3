#!/usr/bin/env bash
# Prints the module files (relative to lib/modules/VERSION) needed to load
# the named modules, dependencies first, from modules.dep.
# Usage: modules-in-order.sh MODULES_DIR NAME...
set -euo pipefail
dir=$1
shift
declare -A done_modules=()
order=()
path_of() { grep -E "(^|/)$1\.ko(\.[a-z]+)?:" "$dir/modules.dep" | head -n1 | cut -d: -f1; }
visit() {
  local file=$1
  [[ -n ${done_modules[$file]:-} ]] && return
  done_modules[$file]=1
  local deps
  deps=$(grep -E "^$file:" "$dir/modules.dep" | cut -d: -f2)
  for dep in $deps; do visit "$dep"; done
  order+=("$file")
}
for name in "$@"; do
  file=$(path_of "$name")
  [[ -n $file ]] || { echo "modules-in-order: module $name not found" >&2; exit 1; }
  visit "$file"
done
printf '%s\n' "${order[@]}"

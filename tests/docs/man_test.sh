#!/usr/bin/env bash
# The man pages against the programs they describe:
#  (a) every page renders without a single roff warning (man-db and groff -ww);
#  (b) every option, mount option and command that a program's --help prints is an entry
#      of its page;
#  (c) every fsoutd.conf key is an entry of fsoutd.conf(5). The keys are fsoutd's long
#      options (the config file means the same by the same names) less those that only
#      make sense on a command line (name: the section's [export NAME] sets it), plus path.
# usage: man_test.sh BUILD_DIR   (the pages are in BUILD_DIR/man, the programs in BUILD_DIR)
set -euo pipefail

build=${1:?usage: man_test.sh BUILD_DIR}
pages=(fsoutd.8 fsout-mount.8 fsout.1 fsoutd.conf.5)
failed=0
fail() {
  echo "man_test: $*" >&2
  failed=1
}

for tool in man groff col; do
  command -v $tool >/dev/null || { echo "man_test: $tool is missing (Debian: man-db, groff-base, bsdextrautils)" >&2; exit 1; }
done

# Warnings are looked for as a user would read the pages (UTF-8); the text is taken in
# the C locale, where groff writes plain ASCII (no Unicode hyphens where it breaks words).
utf8=C.UTF-8
locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' || utf8=C

for page in "${pages[@]}"; do
  file=$build/man/$page
  if [[ ! -f $file ]]; then
    fail "$file is missing (build the man-pages target; it needs scdoc and FSOUT_MAN=ON)"
    continue
  fi
  warnings=$({
    LC_ALL=$utf8 MANWIDTH=80 man --warnings -l "$file" >/dev/null || true
    LC_ALL=$utf8 groff -man -ww -z "$file" || true
  } 2>&1)
  if [[ -n $warnings ]]; then
    fail "$page: roff warnings:"
    printf '%s\n' "$warnings" | sed 's/^/  /' >&2
  fi
done
((failed == 0)) || exit 1

# The entries of a page: in the rendered text, a definition's heading is a line at the
# section indent (7 columns) followed at once by a more indented line (its text). A
# wrapped paragraph line is followed by one at the same indent, so option names that are
# only mentioned in passing do not count.
entries() {
  LC_ALL=C MANWIDTH=200 man -l "$build/man/$1" 2>/dev/null | col -bx |
    awk 'prev != "" && /^        +[^ ]/ { print prev } { prev = ($0 ~ /^       [^ ]/) ? $0 : "" }'
}

# What --help offers: the first column of the lines indented as options or commands
# (1 to 3 spaces; mawk has no {m,n}), up to the gap before the description, plus the
# usage lines. One item a line:
#   --long, -x, -o name=, command NAME
help_items() {
  "$build/$1" --help | awk '
    /^usage:/ { usage = 1 }
    /^$/ { usage = 0; commands = 0 }
    /^commands:/ { commands = 1; next }
    {
      line = $0
      if (usage) spec = line
      else if (line ~ /^  ?  ?[^ ]/) { spec = line; sub(/^ +/, "", spec); sub(/  .*/, "", spec) }
      else next
      if (!usage && commands && spec ~ /^[a-z]/) { split(spec, word, " "); print "command " word[1] }
      if (!usage && !commands && spec !~ /^-/) next
      rest = spec
      while (match(rest, /--[A-Za-z][A-Za-z0-9-]*/)) { print substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH) }
      rest = " " spec
      while (match(rest, /[ ,\[|]-[A-Za-z0-9]([] ,|]|$)/)) { print substr(rest, RSTART + 1, 2); rest = substr(rest, RSTART + 3) }
      rest = spec
      while (match(rest, /\[-[A-Za-z][A-Za-z]+\]/)) {   # a cluster such as [-sfnv]
        n = split(substr(rest, RSTART + 2, RLENGTH - 3), letter, "")
        for (i = 1; i <= n; i++) print "-" letter[i]
        rest = substr(rest, RSTART + RLENGTH)
      }
      rest = spec
      while (match(rest, /-o [a-z_]+=/)) { print substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH) }
    }' | sort -u
}

# Whether an entry of the page names ITEM.
has_entry() {
  local list=$1 item=$2 name
  case $item in
    "command "*) grep -qE "^ +${item#command }( |$)" <<<"$list" ;;  # the entry's first word
    "key "*) grep -qE "^ +${item#key }( |$)" <<<"$list" ;;
    "-o "*)
      name=${item#-o }
      grep -qE "(^|[ ,])(-o )?${name}" <<<"$list" ;;
    *) grep -qE -- "(^|[^A-Za-z0-9-])${item}([^A-Za-z0-9-]|$)" <<<"$list" ;;
  esac
}

declare -A page_of=([fsoutd]=fsoutd.8 [fsout-mount]=fsout-mount.8 [fsout]=fsout.1)
checked=0
for program in fsoutd fsout-mount fsout; do
  [[ -x $build/$program ]] || { fail "$build/$program is missing"; continue; }
  items=$(help_items "$program") || { fail "$program --help failed"; continue; }
  # A --help whose layout this script no longer reads would check nothing at all.
  for must in -h --help -V --version; do
    grep -qx -- "$must" <<<"$items" || fail "$program --help: did not find $must (has its layout changed?)"
  done
  list=$(entries "${page_of[$program]}")
  missing=()
  while IFS= read -r item; do
    checked=$((checked + 1))
    has_entry "$list" "$item" || missing+=("$item")
  done <<<"$items"
  if ((${#missing[@]})); then
    fail "${page_of[$program]}: no entry for these items of '$program --help':"
    printf '  %s\n' "${missing[@]}" >&2
  fi
  # The other way round only informs: a page may document what is not written yet.
  extra=$(grep -oE -- '(^|[ ,])--[A-Za-z][A-Za-z0-9-]*|-o [a-z_]+=' <<<"$list" | sed 's/^[ ,]//' |
    sort -u | grep -vxF -f <(printf '%s\n' "$items") | tr '\n' ' ') || true
  [[ -z $extra ]] || echo "man_test: note: ${page_of[$program]} documents what '$program --help' does not print: $extra"
done

# fsoutd.conf keys: fsoutd's long options that are settings, plus path.
if [[ -x $build/fsoutd ]]; then
  keys=$( (help_items fsoutd | grep -E '^--' | sed 's/^--//' |
    grep -vxE 'help|version|config|export|check-config|admin-fd|name'; echo path) | sort -u)
  list=$(entries fsoutd.conf.5)
  missing=()
  while IFS= read -r key; do
    checked=$((checked + 1))
    has_entry "$list" "key $key" || missing+=("$key")
  done <<<"$keys"
  if ((${#missing[@]})); then
    fail "fsoutd.conf.5: no entry for these keys:"
    printf '  %s\n' "${missing[@]}" >&2
  fi
fi

((failed == 0)) || exit 1
echo "man_test: ${#pages[@]} pages without warnings; $checked options, commands and keys documented"

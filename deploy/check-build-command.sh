#!/usr/bin/env bash
# CI: the Dockerfile's build stage runs the same release build as CI. No container engine is
# at hand in CI, so instead of building the image this compares the text: the one
# `cargo build` command in the Dockerfile and the one in .ci/run must be identical, and must
# be a `--release --locked` build (--locked: Cargo.lock is used as committed, never updated).
#   deploy/check-build-command.sh [DOCKERFILE] [CI_SCRIPT]   (defaults: the repository's)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=${1:-$repo/Dockerfile}
ci=${2:-$repo/.ci/run}

# Every `cargo build …` command in FILE, one per line, outside comments: the text from
# `cargo build` up to the end of the command (a line continuation, `&&`, `||`, `;`, `|`, a
# redirection or the end of the line), with runs of blanks made single.
commands() {
  grep -v '^[[:space:]]*#' "$1" \
    | grep -oE '(^|[[:space:];&|(])cargo[[:space:]]+build([^\\;&|<>#]*)' \
    | sed -E 's/^[[:space:];&|(]+//; s/[[:space:]]+/ /g; s/ +$//' || true
}

fail=0
declare -A found
for f in "$dockerfile" "$ci"; do
  mapfile -t cmds < <(commands "$f")
  if [ "${#cmds[@]}" -ne 1 ]; then
    echo "FAIL: expected exactly one \`cargo build\` command in $f, found ${#cmds[@]}:" >&2
    printf '  %s\n' "${cmds[@]}" >&2
    fail=1
    continue
  fi
  found[$f]=${cmds[0]}
  echo "$f: ${cmds[0]}"
  for flag in --release --locked; do
    if ! grep -qE -- "(^| )$flag( |$)" <<<"${cmds[0]}"; then
      echo "FAIL: the build command in $f lacks $flag" >&2
      fail=1
    fi
  done
done
[ "$fail" -eq 0 ] || exit 1
if [ "${found[$dockerfile]}" != "${found[$ci]}" ]; then
  echo "FAIL: the Dockerfile builds with \`${found[$dockerfile]}\` but CI with \`${found[$ci]}\`" >&2
  exit 1
fi
echo "ok: the Dockerfile and CI build with the same command"

#!/usr/bin/env bash
# CI: the systemd units in deploy/systemd pass `systemd-analyze verify` (unknown or misspelt
# directives, bad values, broken dependencies). The check runs on copies whose ExecStart
# points at a binary that exists here (HUYING_BIN, else /bin/true); the template is checked
# as the instance huying@8081.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze is not installed" >&2; exit 1; }
bin=${HUYING_BIN:-/bin/true}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in huying-migrate.service huying@.service; do
  grep -q '^ExecStart=/usr/local/bin/huying ' "$repo/deploy/systemd/$unit" \
    || { echo "FAIL: $unit does not run /usr/local/bin/huying" >&2; exit 1; }
  sed "s|/usr/local/bin/huying|$bin|g" "$repo/deploy/systemd/$unit" > "$work/$unit"
done
mv "$work/huying@.service" "$work/huying@8081.service"
out=$(cd "$work" && systemd-analyze verify ./huying-migrate.service ./huying@8081.service 2>&1) || {
  echo "$out" >&2
  echo "FAIL: systemd-analyze verify" >&2
  exit 1
}
# verify exits 0 on some warnings; any output about our units is a finding.
if grep -E 'huying' <<<"$out"; then
  echo "FAIL: systemd-analyze verify reported the lines above" >&2
  exit 1
fi
echo "ok: deploy/systemd units pass systemd-analyze verify"

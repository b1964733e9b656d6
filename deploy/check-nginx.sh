#!/usr/bin/env bash
# CI: deploy/nginx/huying.conf passes `nginx -t` (Debian's nginx), in a temporary copy with a
# self-signed certificate and temporary paths, both inside Debian's own nginx.conf (as it will
# run: sites-enabled is included in http { }) and inside a minimal standalone one (as
# deploy/smoke-stack.sh runs it). The compose upstream list is checked the same way.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/deploy/lib/nginx-temp.sh"
command -v nginx >/dev/null || { echo "FAIL: nginx is not installed (apt-get install nginx)" >&2; exit 1; }
nginx -v

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The systemd layout: the upstream file as committed.
make_temp_nginx "$work/systemd" "$repo" 127.0.0.1:8081
cp "$repo/deploy/nginx/huying-upstream.conf" "$work/systemd/huying-upstream.conf"
nginx -t -q -p "$work/systemd" -e "$work/systemd/logs/t.log" -c "$work/systemd/nginx.conf"
if [ -f "$work/systemd/debian-nginx.conf" ]; then
  nginx -t -q -p "$work/systemd" -e "$work/systemd/logs/t.log" -c "$work/systemd/debian-nginx.conf"
fi
echo "ok: deploy/nginx/huying.conf with deploy/nginx/huying-upstream.conf"

# The compose layout: its host names only resolve inside compose, so they are replaced by
# loopback addresses here; the file's syntax is what is checked.
make_temp_nginx "$work/compose" "$repo" 127.0.0.1:8081
sed -E 's/server huying[0-9]+:8080/server 127.0.0.1:8080/' "$repo/deploy/compose/nginx-upstream.conf" \
  > "$work/compose/huying-upstream.conf"
grep -q 'server 127.0.0.1:8080' "$work/compose/huying-upstream.conf"
nginx -t -q -p "$work/compose" -e "$work/compose/logs/t.log" -c "$work/compose/nginx.conf"
echo "ok: deploy/nginx/huying.conf with deploy/compose/nginx-upstream.conf"

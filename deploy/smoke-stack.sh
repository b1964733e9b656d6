#!/usr/bin/env bash
# CI smoke run of the deployment stack: nginx (deploy/nginx/huying.conf, TLS) in front of two
# `huying serve` instances on one PostgreSQL database — the layout of deploy/systemd and
# docker-compose.yml, on this machine without a container engine.
#
#   HUYING_BIN=target/release/huying bash deploy/smoke-stack.sh
#
# Needs: a release binary (HUYING_BIN, default $CARGO_TARGET_DIR/release/huying or
# target/release/huying), PostgreSQL at 127.0.0.1:5432 with trust auth for `postgres`
# (HUYING_SMOKE_PG_ADMIN overrides the admin URL), nginx, openssl, curl, python3.
# It creates the database huying_stack_smoke (dropped again on exit), migrates it from two
# processes at once (as two instances starting together would), seeds the demo street, then
# through nginx over HTTPS: signs in a staff member with a password and a resident with an
# SMS code (the `log` provider writes it to the instance's log), creates a ticket, reads it
# back, sees a change arrive on two live-update streams (SSE through nginx, unbuffered), and
# checks the proxy setup (HSTS, request ids, body limits, the sign-in rate limit) and that
# both instances answered requests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/deploy/lib/nginx-temp.sh"

bin=${HUYING_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/huying}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "FAIL: no huying binary at $bin (build it: cargo build --release --locked)" >&2; exit 1; }
for tool in nginx openssl curl python3 psql; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done
pg_admin=${HUYING_SMOKE_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
dbname=huying_stack_smoke
database_url="postgres://postgres@127.0.0.1:5432/$dbname"
started=$(date +%s)
# SQL on the maintenance database (no NOTICE for a DROP … IF EXISTS of nothing).
pg() { PGOPTIONS="-c client_min_messages=warning" psql "$pg_admin" -qc "$1" >/dev/null; }

work=$(mktemp -d)
pids=()
# On any exit: stop what was started (by process id), drop the database, and on failure show
# the end of every log.
cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pg "DROP DATABASE IF EXISTS $dbname WITH (FORCE)"
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: stack smoke run failed (exit $rc); the logs:" >&2
    for f in "$work"/*.log "$work"/nginx/logs/*.log; do
      [ -f "$f" ] || continue
      echo "---- $f" >&2
      tail -n 30 "$f" >&2
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }
# json FILE EXPR — a value out of a JSON file (EXPR in Python, `d` is the document).
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
# wait_for URL [curl options] — until it answers 2xx, at most 15 s.
wait_for() {
  local url=$1
  shift
  for _ in $(seq 1 75); do
    curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "$url did not answer"
}

read -r port1 port2 https_port http_port < <(free_ports 4)
base="https://127.0.0.1:$https_port"

step "database $dbname"
pg "DROP DATABASE IF EXISTS $dbname WITH (FORCE)"
pg "CREATE DATABASE $dbname"

# What deploy/huying.env.example and docker-compose.yml give the instances.
export DATABASE_URL=$database_url
export HUYING__DATA__DIR=$work/data            # shared by both, like the deployments' data dir
export HUYING__SERVER__PUBLIC_URL=$base        # https: the service sends HSTS (nginx replaces it)
export HUYING__SERVER__TRUSTED_PROXIES=127.0.0.1
export HUYING__DATABASE__MIGRATE_ON_START=false
export HUYING__DATABASE__POOL_SIZE=4
export HUYING__SERVER__WORKERS=2
export HUYING__LIMITS__PASSWORD_HASH_WORKERS=1
# The `log` SMS provider (allowed: public_url is a loopback address) puts the code in the log.
export HUYING__SMS__PROVIDER=log
export HUYING__LOG__FORMAT=json
# Rejected requests (4xx) are logged at debug: each instance's log then shows requests it served.
export HUYING__LOG__LEVEL="info,huying::http=debug"
export NO_COLOR=1
unset RUST_LOG

step "two concurrent \`huying migrate\` (PostgreSQL advisory lock)"
"$bin" migrate > "$work/migrate1.log" 2>&1 &
m1=$!
"$bin" migrate > "$work/migrate2.log" 2>&1 &
m2=$!
wait "$m1" || fail "the first concurrent migrate failed"
wait "$m2" || fail "the second concurrent migrate failed"
grep -q "applied" "$work/migrate1.log" "$work/migrate2.log" || fail "no migration was applied"
"$bin" migrate 2>&1 | grep -q "up to date" || fail "a third migrate found work left"

step "seed-demo"
"$bin" seed-demo --password smoke-pass-123 > "$work/seed.json" 2> "$work/seed.log"
compound_id=$(json "$work/seed.json" 'd["compounds"][0]["id"]')
category_id=$(json "$work/seed.json" 'd["categories"][0]["id"]')
resident_phone=$(json "$work/seed.json" 'd["residents"][0]["phone"]')

step "two instances on 127.0.0.1:$port1 and 127.0.0.1:$port2"
"$bin" serve --bind "127.0.0.1:$port1" > "$work/huying1.log" 2>&1 &
pids+=($!)
"$bin" serve --bind "127.0.0.1:$port2" > "$work/huying2.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port1/readyz"
wait_for "http://127.0.0.1:$port2/readyz"
# docker-compose.yml's healthcheck of an instance (bash, no curl in the image) works.
health=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["huying1"]["healthcheck"]["test"][-1])' \
  "$repo/deploy/docker-compose.yml")
bash -c "${health//127.0.0.1\/8080/127.0.0.1\/$port1}" || fail "the compose healthcheck failed against a ready instance"
bash -c "${health//127.0.0.1\/8080/127.0.0.1\/$http_port}" 2>/dev/null && fail "the compose healthcheck passed with nothing listening"

step "nginx on 127.0.0.1:$https_port (https) and :$http_port (http)"
make_temp_nginx "$work/nginx" "$repo" "127.0.0.1:$port1" "127.0.0.1:$port2"
use_ports "$work/nginx" "$https_port" "$http_port"
nginx -t -q -p "$work/nginx" -e "$work/nginx/logs/main-error.log" -c "$work/nginx/nginx.conf"
nginx -p "$work/nginx" -e "$work/nginx/logs/main-error.log" -c "$work/nginx/nginx.conf" \
  -g 'daemon off;' > "$work/nginx-stdout.log" 2>&1 &
pids+=($!)
wait_for "$base/healthz" -k
access=$work/nginx/logs/access.log

# c ARGS… — curl through nginx; the response body on stdout, headers in $work/h, the status
# in $work/status.
c() {
  curl -ksS -D "$work/h" -o "$work/body" -w '%{http_code}' "$@" > "$work/status"
  cat "$work/body"
}
status() { cat "$work/status"; }
header() { { grep -i "^$1:" "$work/h" || true; } | head -n 1 | cut -d: -f2- | tr -d ' \r'; }
expect() {
  [ "$(status)" = "$1" ] || fail "$2: expected HTTP $1, got $(status): $(head -c 300 "$work/body")"
}

step "http redirects to https"
code=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$http_port/readyz")
case $code in "301 https://127.0.0.1/readyz") ;; *) fail "http answered '$code'" ;; esac

step "readyz through nginx: HSTS once, nginx's request id adopted"
c "$base/readyz" >/dev/null
expect 200 "GET /readyz"
grep -q '"postgres"' "$work/body" || fail "readyz does not report postgres: $(cat "$work/body")"
[ "$(grep -ci '^strict-transport-security:' "$work/h")" = 1 ] || fail "not exactly one HSTS header"
rid=$(header x-request-id)
# nginx's $request_id is 32 hex digits; the service makes UUIDs. Only an instance that trusts
# the proxy returns nginx's id.
[[ $rid =~ ^[0-9a-f]{32}$ ]] || fail "X-Request-Id '$rid' is not nginx's: is 127.0.0.1 a trusted proxy?"
grep -q "rid=$rid " "$access" || fail "request id $rid not in nginx's access log"

step "staff sign-in (password)"
c -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"username":"yc-admin","password":"smoke-pass-123"}' > "$work/staff.json"
expect 200 "staff sign-in"
# shellcheck disable=SC2034 # read as ${!token} below
staff_token=$(json "$work/staff.json" 'd["access_token"]')

step "resident sign-in (SMS code from the instance's log)"
c -X POST "$base/api/v1/auth/otp" -H 'content-type: application/json' \
  -d "{\"phone\":\"$resident_phone\"}" >/dev/null
case $(status) in 200 | 202 | 204) ;; *) fail "POST /auth/otp answered $(status): $(cat "$work/body")" ;; esac
code=""
for _ in $(seq 1 25); do
  code=$(cat "$work/huying1.log" "$work/huying2.log" | grep -o '验证码为 [0-9]\{6\}' | tail -n 1 | grep -o '[0-9]\{6\}' || true)
  [ -n "$code" ] && break
  sleep 0.2
done
[ -n "$code" ] || fail "no sign-in code in either instance's log"
c -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"phone\":\"$resident_phone\",\"code\":\"$code\"}" > "$work/resident.json"
expect 200 "resident sign-in"
resident_token=$(json "$work/resident.json" 'd["access_token"]')

step "ticket create"
c -X POST "$base/api/v1/tickets" -H 'content-type: application/json' \
  -H "authorization: Bearer $resident_token" -H "Idempotency-Key: stack-smoke-$$" \
  -d "{\"compound_id\":$compound_id,\"category_id\":$category_id,\"title\":\"楼道灯不亮\",\"description\":\"3 单元 2 楼楼道灯坏了一周。\"}" \
  > "$work/ticket.json"
expect 201 "POST /tickets"
ticket_id=$(json "$work/ticket.json" 'd["id"]')
reference=$(json "$work/ticket.json" 'd["reference"]')
echo "   created ticket $ticket_id ($reference)"
# Read back several times: round robin sends some of these to the other instance, which must
# accept a token the first one issued (one shared signing key).
for who in resident resident staff staff; do
  token=${who}_token
  c "$base/api/v1/tickets/$ticket_id" -H "authorization: Bearer ${!token}" >/dev/null
  expect 200 "GET /tickets/$ticket_id as $who"
  grep -qF "$reference" "$work/body" || fail "GET /tickets/$ticket_id as $who lacks $reference"
done

step "live updates through nginx: an event reaches both streams at once, unbuffered"
# Two streams (round robin puts them on the two instances when it alternates); a comment through
# nginx lands on one instance and must reach both streams well within their 5 s.
stream_pids=()
for i in 1 2; do
  curl -ksSN --max-time 5 -H "authorization: Bearer $resident_token" "$base/api/v1/stream" \
    > "$work/stream$i.txt" 2>/dev/null &
  stream_pids+=($!)
done
for _ in $(seq 1 25); do
  grep -q '^event: ready' "$work/stream1.txt" && grep -q '^event: ready' "$work/stream2.txt" && break
  sleep 0.2
done
c -X POST "$base/api/v1/tickets/$ticket_id/comment" -H 'content-type: application/json' \
  -H "authorization: Bearer $resident_token" -d '{"note":"晚上 8 点后在家"}' >/dev/null
expect 200 "POST /tickets/$ticket_id/comment"
for p in "${stream_pids[@]}"; do wait "$p" 2>/dev/null || true; done
for i in 1 2; do
  grep -q '^event: ready' "$work/stream$i.txt" || fail "stream $i never opened: $(head -c 300 "$work/stream$i.txt")"
  grep -qF "{\"ids\":[$ticket_id]}" "$work/stream$i.txt" \
    || fail "stream $i did not get ticket $ticket_id: $(head -c 300 "$work/stream$i.txt")"
done
grep '"GET /api/v1/stream ' "$access" | grep -o 'upstream=[^ ]*' | sort | uniq -c \
  | awk '{ sub("upstream=", "", $2); print "   streams on " $2 ": " $1 }'

step "body limits: a 2 MB upload reaches the service, 7 MB and a 2 MB JSON body stop at nginx"
head -c 2000000 /dev/urandom > "$work/junk.bin"
c -X POST "$base/api/v1/tickets/$ticket_id/attachments" -H "authorization: Bearer $resident_token" \
  -F "file=@$work/junk.bin;type=image/jpeg" >/dev/null
expect 422 "2 MB non-image upload"
grep -q unsupported_file_type "$work/body" || fail "the service did not judge the upload: $(cat "$work/body")"
head -c 7000000 /dev/urandom > "$work/big.bin"
c -X POST "$base/api/v1/tickets/$ticket_id/attachments" -H "authorization: Bearer $resident_token" \
  -F "file=@$work/big.bin;type=image/jpeg" >/dev/null
expect 413 "7 MB upload"
grep -qi '^server: nginx' "$work/h" || fail "the 7 MB upload was not refused by nginx"
python3 -c 'print("{\"x\":\"" + "a" * 2000000 + "\"}")' > "$work/big.json"
c -X POST "$base/api/v1/tickets" -H 'content-type: application/json' \
  -H "authorization: Bearer $resident_token" --data-binary "@$work/big.json" >/dev/null
expect 413 "2 MB JSON body"

step "sign-in rate limit: nginx answers 429 {code, message} with Retry-After"
limited=""
for _ in $(seq 1 30); do
  c -X POST "$base/api/v1/auth/refresh" -H 'content-type: application/json' \
    -d '{"refresh_token":"not-a-token"}' >/dev/null
  if [ "$(status)" = 429 ]; then limited=yes; break; fi
done
[ -n "$limited" ] || fail "30 quick requests to /api/v1/auth/ were never limited"
json "$work/body" 'd["code"]' | grep -qx too_many_requests || fail "429 body: $(cat "$work/body")"
[ -n "$(header retry-after)" ] || fail "the 429 has no Retry-After"
[ "$(grep -ci '^strict-transport-security:' "$work/h")" = 1 ] || fail "the 429 lacks HSTS"

step "both instances served requests"
for p in "$port1" "$port2"; do
  n=$(grep -c "upstream=127.0.0.1:$p " "$access" || true)
  [ "$n" -gt 0 ] || fail "nginx sent no request to 127.0.0.1:$p"
  echo "   nginx -> 127.0.0.1:$p: $n requests"
done
for i in 1 2; do
  grep -q '"request_id"' "$work/huying$i.log" || fail "instance $i logged no request"
done
grep -q '"POST /api/v1/tickets HTTP/[0-9.]*" 201 ' "$access" || fail "no ticket create in nginx's access log"
for i in 1 2; do
  if grep -q '"level":"ERROR"' "$work/huying$i.log"; then
    fail "instance $i logged an error: $(grep '"level":"ERROR"' "$work/huying$i.log" | head -n 3)"
  fi
done

echo "ok: stack smoke run passed in $(($(date +%s) - started)) s"

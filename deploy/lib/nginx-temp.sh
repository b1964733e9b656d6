# Sourced by deploy/check-nginx.sh and deploy/smoke-stack.sh: a runnable copy of
# deploy/nginx/huying.conf in a temporary directory. The committed file keeps its production
# paths; only the copy gets a self-signed certificate, the temporary log paths, its own
# upstream list and (for a run) unprivileged ports. Every substitution must find its target,
# so a changed production path fails the check instead of silently testing something else.

# nginx_subst FILE FROM TO — replace every FROM (a fixed string) by TO; FROM must occur.
nginx_subst() {
  local file=$1 from=$2 to=$3
  if ! grep -qF -- "$from" "$file"; then
    echo "FAIL: '$from' not found in $file (deploy/nginx/huying.conf changed?)" >&2
    return 1
  fi
  FROM=$from TO=$to python3 - "$file" <<'PY'
import os, sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
open(p, "w", encoding="utf-8").write(s.replace(os.environ["FROM"], os.environ["TO"]))
PY
}

# make_temp_nginx DIR REPO UPSTREAM... — writes into DIR:
#   tls/fullchain.pem, tls/privkey.pem   a self-signed certificate for hy.example.gov.cn
#   huying-upstream.conf                 `server UPSTREAM;` for each UPSTREAM (host:port)
#   huying.conf                          the site with the paths above
#   nginx.conf                           a standalone main config including it (pid, temp
#                                        paths and logs all inside DIR)
#   debian-nginx.conf                    Debian's /etc/nginx/nginx.conf with the site in place
#                                        of sites-enabled/* (when that file exists)
make_temp_nginx() {
  local dir=$1 repo=$2
  shift 2
  mkdir -p "$dir/tls" "$dir/logs" "$dir/tmp"
  # Workers run as another user when the master is root: they must reach DIR.
  chmod 0755 "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hy.example.gov.cn" \
    -addext "subjectAltName=DNS:hy.example.gov.cn,IP:127.0.0.1" \
    -keyout "$dir/tls/privkey.pem" -out "$dir/tls/fullchain.pem" 2>/dev/null
  : > "$dir/huying-upstream.conf"
  local u
  for u in "$@"; do
    echo "server $u max_fails=3 fail_timeout=10s;" >> "$dir/huying-upstream.conf"
  done
  cp "$repo/deploy/nginx/huying.conf" "$dir/huying.conf"
  nginx_subst "$dir/huying.conf" /etc/ssl/huying/fullchain.pem "$dir/tls/fullchain.pem"
  nginx_subst "$dir/huying.conf" /etc/ssl/huying/privkey.pem "$dir/tls/privkey.pem"
  nginx_subst "$dir/huying.conf" /etc/nginx/huying-upstream.conf "$dir/huying-upstream.conf"
  nginx_subst "$dir/huying.conf" /var/log/nginx/huying.access.log "$dir/logs/access.log"
  nginx_subst "$dir/huying.conf" /var/log/nginx/huying.error.log "$dir/logs/error.log"
  cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/main-error.log;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $dir/logs/main-access.log;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/huying.conf;
}
EOF
  if [ -f /etc/nginx/nginx.conf ]; then
    cp /etc/nginx/nginx.conf "$dir/debian-nginx.conf"
    nginx_subst "$dir/debian-nginx.conf" "include /etc/nginx/sites-enabled/*;" "include $dir/huying.conf;"
  fi
}

# use_ports DIR HTTPS_PORT HTTP_PORT — the copy listens on these ports, IPv4 loopback only.
use_ports() {
  local dir=$1 https=$2 http=$3
  nginx_subst "$dir/huying.conf" "listen [::]:443 ssl http2;" ""
  nginx_subst "$dir/huying.conf" "listen [::]:80;" ""
  nginx_subst "$dir/huying.conf" "listen 443 ssl http2;" "listen 127.0.0.1:$https ssl http2;"
  nginx_subst "$dir/huying.conf" "listen 80;" "listen 127.0.0.1:$http;"
}

#!/usr/bin/env python3
"""CI: deploy/docker-compose.yml holds together without a container engine to run it.

Checks what would otherwise only show when the stack runs: the instances trust exactly
nginx's fixed address, nginx's upstream list names exactly the instances, the instances start
after a successful migrate, share one attachments volume and one signing key, and every file
mounted into nginx exists in the repository.
"""
import pathlib
import re
import sys

import yaml

deploy = pathlib.Path(__file__).resolve().parent
errors = []


def check(ok, message):
    if not ok:
        errors.append(message)


doc = yaml.safe_load((deploy / "docker-compose.yml").read_text(encoding="utf-8"))
services = doc["services"]
check({"db", "migrate", "huying1", "huying2", "nginx"} <= services.keys(), f"services: {sorted(services)}")
instances = sorted(n for n, s in services.items() if s.get("command") == ["serve"])
check(instances == ["huying1", "huying2"], f"instances running `serve`: {instances}")
check(services["migrate"].get("command") == ["migrate"], "the migrate service does not run `migrate`")

nginx = services["nginx"]
nginx_ip = nginx["networks"]["backend"]["ipv4_address"]
for name in instances + ["migrate"]:
    s = services[name]
    env = s.get("environment", {})
    check(env.get("HUYING__SERVER__TRUSTED_PROXIES") == nginx_ip,
          f"{name}: HUYING__SERVER__TRUSTED_PROXIES={env.get('HUYING__SERVER__TRUSTED_PROXIES')} is not nginx's {nginx_ip}")
    check("HUYING__AUTH__JWT_SECRET" in env, f"{name}: no shared HUYING__AUTH__JWT_SECRET")
    check(str(env.get("DATABASE_URL", "")).startswith("postgres://"), f"{name}: DATABASE_URL is not PostgreSQL")
    check("huying-data:/var/lib/huying/data" in s.get("volumes", []), f"{name}: not on the shared huying-data volume")
for name in instances:
    deps = services[name].get("depends_on", {})
    check(deps.get("migrate", {}).get("condition") == "service_completed_successfully",
          f"{name}: does not wait for a successful migrate")
    check(deps.get("db", {}).get("condition") == "service_healthy", f"{name}: does not wait for a healthy db")
    check(services[name].get("environment", {}).get("HUYING__DATABASE__MIGRATE_ON_START") == "false",
          f"{name}: migrates on start although the migrate service does")
    check("healthcheck" in services[name], f"{name}: no healthcheck (nginx waits for it)")
    check(nginx.get("depends_on", {}).get(name, {}).get("condition") == "service_healthy",
          f"nginx does not wait for {name}")

upstream = (deploy / "compose" / "nginx-upstream.conf").read_text(encoding="utf-8")
servers = sorted(re.findall(r"^\s*server\s+([A-Za-z0-9_.-]+):8080\b", upstream, re.M))
check(servers == instances, f"deploy/compose/nginx-upstream.conf names {servers}, the instances are {instances}")

mounts = {}
for v in nginx.get("volumes", []):
    src, dst = v.split(":")[:2]
    mounts[dst] = src
check(mounts.get("/etc/nginx/huying-upstream.conf") == "./compose/nginx-upstream.conf",
      "nginx does not mount deploy/compose/nginx-upstream.conf as /etc/nginx/huying-upstream.conf")
check(mounts.get("/etc/nginx/conf.d/default.conf") == "./nginx/huying.conf",
      "nginx does not mount deploy/nginx/huying.conf as its site")
for dst, src in mounts.items():
    if src.startswith("./") and src.endswith(".conf"):
        check((deploy / src).is_file(), f"nginx mounts {src}, which does not exist")
site = (deploy / "nginx" / "huying.conf").read_text(encoding="utf-8")
check("include /etc/nginx/huying-upstream.conf;" in site, "the site no longer includes /etc/nginx/huying-upstream.conf")
for path in re.findall(r"^\s*ssl_certificate(?:_key)?\s+(\S+);", site, re.M):
    check(path.startswith("/etc/ssl/huying/"), f"the site's {path} is not in the mounted /etc/ssl/huying")

if errors:
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    sys.exit(1)
print("ok: deploy/docker-compose.yml is consistent with the nginx site and the instances")

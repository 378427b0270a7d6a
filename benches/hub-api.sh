#!/usr/bin/env bash
# berth's JupyterHub REST API against a real JupyterHub 6.1.1, side by side:
# the reads an idle culler or a dashboard makes all day, each with a service's
# admin token (GET /hub/api/user, GET /hub/api/users/alice, GET /hub/api/users
# with 20 users), driven by wrk over loopback, one after the other on the same
# machine. JupyterHub runs from the pinned environment at /opt/berth/jupyter
# with configurable-http-proxy, as the differential test runs it; berth is
# `berth serve` with its default SQLite store.
#
# Run:   benches/hub-api.sh
#        DURATION=30s CONNECTIONS=16 benches/hub-api.sh
# Needs: what scripts/install-deps installs (cargo, curl, jq, wrk, the Jupyter
# environment, configurable-http-proxy).
# Prints requests/s and p50/p99 latency of both, and berth's ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

duration=${DURATION:-10s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-16}
jupyter=/opt/berth/jupyter
chp=/opt/berth/node/node_modules/.bin/configurable-http-proxy
[[ -x $jupyter/bin/jupyterhub && -x $chp ]] || die "run scripts/install-deps: no JupyterHub or CHP"
service_token=bench-service-token-0123456789abcdef
hub_pid=
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
stop_hub() {
  if [[ -n $hub_pid ]]; then
    kill "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
  fi
  bench_cleanup
}
trap stop_hub EXIT

# JupyterHub, with the service in its configuration as its docs show.
hub_dir="$bench_tmp/jupyterhub"
mkdir -p "$hub_dir"
port=$(free_port) hub_port=$(free_port) api_port=$(free_port)
cat >"$hub_dir/jupyterhub_config.py" <<PY
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = $port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = $hub_port
c.JupyterHub.db_url = "sqlite:///$hub_dir/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "$hub_dir/cookie_secret"
c.ConfigurableHTTPProxy.command = ["$chp"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:$api_port"
c.ConfigurableHTTPProxy.auth_token = "proxy-$service_token"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{"name": "bench", "api_token": "$service_token", "admin": True}]
c.JupyterHub.log_level = "WARN"
PY
(cd "$hub_dir" && exec "$jupyter/bin/jupyterhub" -f jupyterhub_config.py) \
  >"$hub_dir/out" 2>"$hub_dir/err" &
hub_pid=$!
deadline=$((SECONDS + 60))
until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/hub/api/") == 200 ]]; do
  kill -0 "$hub_pid" 2>/dev/null || { tail -n 20 "$hub_dir/err" >&2; die "JupyterHub exited while starting"; }
  ((SECONDS < deadline)) || die "JupyterHub did not answer within 60 s"
  sleep 0.2
done
echo "JupyterHub (pid $hub_pid) on http://127.0.0.1:$port" >&2

build_berth
start_berth
api_token
api POST /hub/api/services/bench -H "authorization: token $token" \
  -d "{\"api_token\": \"$service_token\", \"admin\": true}" >/dev/null

users=$(python3 -c 'import json; print(json.dumps({"usernames": ["alice"] + [f"user{i}" for i in range(19)]}))')
for base in "http://$addr" "http://127.0.0.1:$port"; do
  curl -sSf --max-time 10 -X POST -H "authorization: token $service_token" -d "$users" \
    "$base/hub/api/users" >/dev/null || die "create users at $base"
done

run() { # NAME URL -> "requests/s p50 p99"
  local report summary rps p50 p99 non2xx errors
  report=$(wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s --latency \
    -H "Authorization: token $service_token" "$2")
  summary=$(wrk_parse <<<"$report") || die "could not parse wrk's report for $1"
  read -r rps p50 p99 non2xx errors <<<"$summary"
  ((non2xx == 0 && errors == 0)) || die "$1: $non2xx non-2xx answers, $errors socket errors"
  echo "$rps $p50 $p99"
}

printf '\nberth %s vs JupyterHub 6.1.1, %s CPUs, wrk -t%s -c%s -d%s, a service token\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" "$threads" "$connections" "$duration"
printf '%-26s %14s %10s %10s %16s %10s %10s %8s\n' request "berth req/s" "p50 ms" "p99 ms" \
  "JupyterHub req/s" "p50 ms" "p99 ms" ratio
for path in /hub/api/user /hub/api/users/alice /hub/api/users; do
  read -r b_rps b_p50 b_p99 <<<"$(run "berth $path" "http://$addr$path")"
  read -r j_rps j_p50 j_p99 <<<"$(run "JupyterHub $path" "http://127.0.0.1:$port$path")"
  printf '%-26s %14.0f %10.3f %10.3f %16.0f %10.3f %10.3f %7.1fx\n' "GET $path" \
    "$b_rps" "$b_p50" "$b_p99" "$j_rps" "$j_p50" "$j_p99" "$(awk -v a="$b_rps" -v b="$j_rps" 'BEGIN { print a / b }')"
done

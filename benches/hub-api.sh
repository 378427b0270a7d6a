#!/usr/bin/env bash
# berth's JupyterHub REST API against a real JupyterHub 6.1.1, side by side, on
# the same machine, one after the other, each with a service's admin token:
#   1. create 1,000 users, one POST /hub/api/users/{name} each, over 16
#      connections (wrk with benches/hub-create.lua): users/s;
#   2. the reads an idle culler or a dashboard makes all day, with those 1,000
#      users: GET /hub/api/users/{name} (16 connections, and 1 connection for
#      its p50), GET /hub/api/users?limit=100, GET /hub/api/user (wrk);
#   3. the resident memory of `berth serve` and of JupyterHub with its
#      configurable-http-proxy, holding 1,000 users;
#   4. create 1,000 more users in bulk, POST /hub/api/users with 100 names a
#      request: users/s.
# JupyterHub runs from the pinned environment at /opt/berth/jupyter with
# configurable-http-proxy, as the differential test runs it; berth is
# `berth serve` (release build) with its default SQLite store.
#
# Run:   benches/hub-api.sh
#        DURATION=30s CONNECTIONS=16 USERS=1000 benches/hub-api.sh
# Needs: what scripts/install-deps installs (cargo, curl, jq, wrk, the Jupyter
# environment, configurable-http-proxy).
# Prints requests/s (users/s for creation) and p50/p99 latency of both, and
# berth's ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

duration=${DURATION:-10s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-16}
users=${USERS:-1000}
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

for base in "http://$addr" "http://127.0.0.1:$port"; do
  curl -sSf --max-time 10 -X POST -H "authorization: token $service_token" \
    "$base/hub/api/users/alice" >/dev/null || die "create alice at $base"
done

create() { # NAME BASE MODE PREFIX -> "users/s seconds"
  local out=$bench_tmp/create.out wrk_pid result rate seconds made failed conns=$connections
  # In bulk, a connection for each request at most: idle ones would ask for
  # GET /hub/api/ meanwhile.
  [[ $3 == bulk ]] && conns=$(((users + 99) / 100 < connections ? (users + 99) / 100 : connections))
  ((conns >= threads)) || conns=$threads
  MODE=$3 PREFIX=$4 COUNT=$users BATCH=100 THREADS=$threads \
    wrk -t"$threads" -c"$conns" -d600s --timeout 60s -s benches/hub-create.lua \
    -H "Authorization: token $service_token" "$2" >"$out" &
  wrk_pid=$!
  # wrk runs for its whole duration: each thread says when its share is done.
  until (($(grep -c '^DONE ' "$out") >= threads)); do
    kill -0 "$wrk_pid" 2>/dev/null || die "$1: wrk ended early: $(cat "$out")"
    sleep 0.05
  done
  kill "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" 2>/dev/null || true
  result=$(awk '$1 == "DONE" {
      made += $3; failed += $4
      if (t0 == "" || $5 < t0) t0 = $5
      if ($6 > t1) t1 = $6
    }
    END { printf "%.1f %.3f %d %d\n", made / (t1 - t0), t1 - t0, made, failed }' "$out")
  read -r rate seconds made failed <<<"$result"
  ((made == users && failed == 0)) || die "$1: $made of $users users made, $failed requests failed"
  echo "$rate $seconds"
}

run() { # NAME URL [CONNECTIONS THREADS] -> "requests/s p50 p99"
  local report summary rps p50 p99 non2xx errors
  report=$(wrk -t"${4:-$threads}" -c"${3:-$connections}" -d"$duration" --timeout 5s --latency \
    -H "Authorization: token $service_token" "$2")
  summary=$(wrk_parse <<<"$report") || die "could not parse wrk's report for $1"
  read -r rps p50 p99 non2xx errors <<<"$summary"
  ((non2xx == 0 && errors == 0)) || die "$1: $non2xx non-2xx answers, $errors socket errors"
  echo "$rps $p50 $p99"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

rss_mb() { # PID... -> the sum of their resident memory, MB
  ps -o rss= -p "$(tr ' ' ',' <<<"$*")" | awk '{ kb += $1 } END { printf "%.0f", kb / 1024 }'
}

printf '\nberth %s vs JupyterHub 6.1.1, %s CPUs, wrk -t%s -c%s -d%s, a service token, %s users\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" "$threads" "$connections" \
  "$duration" "$users"
printf '%-34s %12s %8s %8s %14s %8s %8s %8s\n' request "berth /s" "p50 ms" "p99 ms" \
  "JupyterHub /s" "p50 ms" "p99 ms" ratio

read -r b_rate b_secs <<<"$(create "berth create" "http://$addr" one u)"
read -r j_rate j_secs <<<"$(create "JupyterHub create" "http://127.0.0.1:$port" one u)"
printf '%-34s %12.0f %8s %8s %14.0f %8s %8s %8s\n' "create $users users, users/s" \
  "$b_rate" - - "$j_rate" - - "$(ratio "$b_rate" "$j_rate")"

row() { # LABEL PATH [CONNECTIONS THREADS]
  local b_rps b_p50 b_p99 j_rps j_p50 j_p99
  read -r b_rps b_p50 b_p99 <<<"$(run "berth $2" "http://$addr$2" "${@:3}")"
  read -r j_rps j_p50 j_p99 <<<"$(run "JupyterHub $2" "http://127.0.0.1:$port$2" "${@:3}")"
  printf '%-34s %12.0f %8.3f %8.3f %14.0f %8.3f %8.3f %8s\n' "$1" \
    "$b_rps" "$b_p50" "$b_p99" "$j_rps" "$j_p50" "$j_p99" "$(ratio "$b_rps" "$j_rps")"
}
row "GET /hub/api/users/{name}" /hub/api/users/u1-7
row "GET /hub/api/users/{name}, 1 conn" /hub/api/users/u1-7 1 1
row "GET /hub/api/users?limit=100" "/hub/api/users?limit=100"
row "GET /hub/api/user" /hub/api/user

hub_all="$hub_pid $(pgrep -P "$hub_pid" | tr '\n' ' ')"
printf '%-34s %12s %8s %8s %14s\n' "RSS with $users users, MB" "$(rss_mb "$berth_pid")" - - \
  "$(rss_mb $hub_all)"

read -r b_rate b_secs <<<"$(create "berth bulk create" "http://$addr" bulk b)"
read -r j_rate j_secs <<<"$(create "JupyterHub bulk create" "http://127.0.0.1:$port" bulk b)"
printf '%-34s %12.0f %8s %8s %14.0f %8s %8s %8s\n' "create $users more, 100 a POST" \
  "$b_rate" - - "$j_rate" - - "$(ratio "$b_rate" "$j_rate")"

# shellcheck shell=bash
# Shared by benches/proxy.sh and benches/websocket.sh, after benches/lib.sh:
# one workspace as the upstream, and nginx and configurable-http-proxy (CHP)
# in front of it beside berth. Source it, do not run it; sourcing it installs
# the trap that stops the proxies, deletes the workspace through berth's API
# (waiting until it is gone), stops berth and removes the temporary directory.
#
# Functions, in the order a bench calls them:
#   start_berth_process     build, berth serve with the process runtime, a token
#                           sets berth_pid, addr, token, auth
#   start_workspace NAME SCRIPT  a profile and a workspace whose app is `sh -c SCRIPT`,
#                           until running (calling the function named by on_home,
#                           if set, meanwhile)  sets ws_id, ws_log, ws_home, upstream,
#                           base[direct|berth]
#   start_nginx KEEPALIVE   nginx in front of it (WebSocket upgrades too)  sets base[nginx]
#   start_chp               CHP in front of it                             sets base[chp]
#   nginx_started           after nginx answered: note its workers (for rss_mib)
#   rss_mib TARGET          a proxy's resident memory now, in MiB (0 for direct)
#   median                  the median of the numbers on stdin
#   secs DURATION           10s / 2m / 10 -> seconds, or nothing if not such a duration
# Settings it reads: nginx_workers (worker_processes); from the environment,
# BERTH_ENV: more VAR=value settings for berth serve, space-separated (e.g.
# BERTH_ENV=MIMALLOC_PURGE_DELAY=0).

nginx=/usr/sbin/nginx
chp=/opt/berth/node/node_modules/.bin/configurable-http-proxy
declare -A base

secs() {
  [[ $1 =~ ^([1-9][0-9]{0,3})([sm]?)$ ]] || return 0
  if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# stop_pid PID [CHILDREN...]: TERM, up to 5 s to exit, else KILL it and the
# children named (nginx's master stops its workers, but they outlive a killed one).
stop_pid() {
  local pid=$1 _
  shift
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in {1..50}; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" "$@" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

load_pid='' # the load generator a bench runs in the background
nginx_pid=''
nginx_workers_pids=()
chp_pid=''
ws_id=''
token=''
# Deletes the workspace through the API and waits (120 s at most) until berth has
# removed it. Used by the trap too, so it never dies.
delete_workspace() {
  [[ -n $ws_id && -n $token && -n $berth_pid ]] || return 0
  kill -0 "$berth_pid" 2>/dev/null || return 1
  local auth="authorization: Bearer $token" code deadline=$((SECONDS + 120))
  curl -sS -o /dev/null --max-time 10 -X DELETE -H "$auth" "http://$addr/api/v1/workspaces/$ws_id" || true
  until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "$auth" \
    "http://$addr/api/v1/workspaces/$ws_id") && [[ $code == 404 ]]; do
    ((SECONDS < deadline)) || { echo "warning: workspace $ws_id was not deleted within 120 s" >&2; return 1; }
    sleep 0.2
  done
  ws_id=
}
stop_proxies() {
  stop_pid "$load_pid" # timeout passes the TERM on to the load generator
  load_pid=''
  stop_pid "$chp_pid"
  stop_pid "$nginx_pid" "${nginx_workers_pids[@]}"
  chp_pid=''
  nginx_pid=''
  nginx_workers_pids=()
}
proxy_cleanup() {
  stop_proxies
  if ! delete_workspace; then
    # Workspaces outlive berth by design: keep the data dir for deleting it later.
    echo "warning: workspace $ws_id was not deleted; it and $bench_tmp are left:" >&2
    echo "  BERTH_RUNTIME=process berth serve --data-dir $bench_tmp/data, then delete it" >&2
    bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-empty.XXXXXX") # what bench_cleanup removes
  fi
  bench_cleanup # stops berth serve, removes $bench_tmp
}
trap proxy_cleanup EXIT

start_berth_process() {
  [[ $(id -u) == 0 ]] || die "the process runtime needs root, and so do the proxies (the workspace firewall)"
  [[ -x $nginx ]] || die "no nginx at $nginx: run scripts/install-deps"
  [[ -x $chp ]] || die "no configurable-http-proxy at $chp: run scripts/install-deps"
  build_berth
  # berth serve in a session of its own, so that a Ctrl-C reaches only this script,
  # whose trap then deletes the workspace through the still running berth.
  printf '#!/bin/sh\nexec setsid %q "$@"\n' "$berth_bin" >"$bench_tmp/berth-setsid"
  chmod 755 "$bench_tmp/berth-setsid"
  berth_bin=$bench_tmp/berth-setsid
  # shellcheck disable=SC2086 # BERTH_ENV: VAR=value words
  start_berth BERTH_RUNTIME=process ${BERTH_ENV:-}
  api_token
  auth="authorization: Bearer $token"
}

# start_workspace NAME SCRIPT: a profile NAME (1 CPU, 256 MiB, no egress, never
# culled) whose app is `sh -c SCRIPT`, and a workspace NAME of it, started and
# waited for (60 s at most). Its app listens on $PORT at the workspace's address.
start_workspace() {
  local name=$1 script=$2 state deadline
  api POST /api/v1/profiles -H "$auth" -d "$(jq -n --arg n "$name" --arg s "$script" '{name: $n,
    display_name: "Bench upstream", cpu: 1, memory_bytes: 268435456, idle_timeout_secs: 0,
    max_lifetime_secs: 0, start_timeout_secs: 60, egress: false,
    app: {kind: "command", argv: ["sh", "-c", $s]}}')" >/dev/null
  ws_id=$(api POST /api/v1/workspaces -H "$auth" \
    -d "{\"name\": \"$name\", \"profile\": \"$name\", \"start\": true}" | jq -r .id)
  ws_log=$bench_tmp/data/workspaces/logs/$ws_id.log
  ws_home=$bench_tmp/data/workspaces/homes/$ws_id
  deadline=$((SECONDS + 60))
  while :; do
    # A bench's hook, called until the app runs: e.g. to put a program in its home.
    [[ -z ${on_home:-} ]] || "$on_home"
    state=$(api GET "/api/v1/workspaces/$ws_id" -H "$auth" | jq -r .state) || die "GET the workspace failed"
    [[ $state != running ]] || break
    [[ $state != failed ]] || { tail -n 20 "$ws_log" >&2; die "the workspace failed to start"; }
    ((SECONDS < deadline)) || { tail -n 20 "$ws_log" >&2; die "the workspace was not running within 60 s"; }
    sleep 0.1
  done
  upstream=$(jq -r .upstream "$bench_tmp/data/workspaces/run/$ws_id.json")
  [[ $upstream =~ ^10\.213\.[0-9]+\.[0-9]+:[0-9]+$ ]] || die "unexpected upstream '$upstream'"
  echo "workspace $ws_id running, upstream http://$upstream" >&2
  base[direct]=http://$upstream
  base[berth]=http://$addr
}

# start_nginx KEEPALIVE: nginx in front of the workspace, as root (the workspace
# firewall), keep-alive both ways (KEEPALIVE idle upstream connections per
# worker), WebSocket upgrades passed through.
start_nginx() {
  nd=$bench_tmp/nginx
  mkdir -p "$nd"
  local port
  port=$(free_port)
  cat >"$nd/nginx.conf" <<NGINX
user root;
worker_processes ${nginx_workers:-1};
pid $nd/nginx.pid;
error_log $nd/error.log warn;
events { worker_connections 40000; }
http {
  access_log off;
  client_body_temp_path $nd/body;
  proxy_temp_path $nd/proxy;
  fastcgi_temp_path $nd/fastcgi;
  uwsgi_temp_path $nd/uwsgi;
  scgi_temp_path $nd/scgi;
  keepalive_requests 100000000;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream workspace {
    server $upstream;
    keepalive $1;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://workspace;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_read_timeout 1h;
    }
  }
}
NGINX
  "$nginx" -q -t -p "$nd/" -e "$nd/error.log" -c "$nd/nginx.conf" || die "nginx: bad configuration"
  setsid "$nginx" -p "$nd/" -e "$nd/error.log" -c "$nd/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  base[nginx]=http://127.0.0.1:$port
}

# start_chp: configurable-http-proxy in front of the workspace, as root, the
# route as its default target.
start_chp() {
  local port api_port
  port=$(free_port)
  api_port=$(free_port)
  CONFIGPROXY_AUTH_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
    setsid "$chp" --ip 127.0.0.1 --port "$port" --api-ip 127.0.0.1 --api-port "$api_port" \
    --default-target "http://$upstream" --log-level warn >"$bench_tmp/chp.log" 2>&1 &
  chp_pid=$!
  base[chp]=http://127.0.0.1:$port
}

nginx_started() {
  [[ -z $nginx_pid ]] || mapfile -t nginx_workers_pids < <(pgrep -P "$nginx_pid" || true)
}

# proxy_log TARGET: the last lines of that proxy's log, for an error.
proxy_log() {
  case $1 in
    nginx) tail -n 20 "$nd/error.log" >&2 ;;
    chp) tail -n 20 "$bench_tmp/chp.log" >&2 ;;
    berth) tail -n 20 "$bench_tmp/berth.err" >&2 ;;
    direct) tail -n 20 "$ws_log" >&2 ;;
  esac
}

rss_mib() {
  local pids=() pid kib=0
  case $1 in
    berth) pids=("$berth_pid") ;;
    nginx) pids=("$nginx_pid" "${nginx_workers_pids[@]}") ;;
    chp) pids=("$chp_pid") ;;
  esac
  for pid in "${pids[@]}"; do
    kib=$((kib + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo $((kib / 1024))
}

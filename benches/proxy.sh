#!/usr/bin/env bash
# Compares berth's built-in proxy with nginx and configurable-http-proxy (CHP, what
# JupyterHub puts in front of its servers), side by side in one run, against the
# same small upstream:
#
# - the upstream: nginx as a berth workspace's app (process runtime: bubblewrap,
#   cgroup, network namespace; a profile of 1 CPU and 256 MiB), answering
#   `200 ok` on every path, keep-alive without a request limit. berth routes
#   /user/admin/bench/… to it; the others reach the same address (the
#   workspace's upstream, 10.213.x.2:8888, read from <data>/workspaces/run/<id>.json).
# - direct:  wrk straight to the upstream (what any proxy adds is measured against it)
# - berth:   `berth serve`'s /user/admin/bench/x, with an API token (auth from
#            berth's cache, the owner's route, pooled keep-alive upstream)
# - nginx:   Debian's nginx, `proxy_pass` with an upstream keep-alive pool
#            (NGINX_WORKERS worker processes, default auto = one per CPU)
# - configurable-http-proxy: CHP 5.3.0 (node, one process) with --default-target
#
# Every target gets the same request (GET /user/admin/bench/x with the same
# `Authorization: Bearer` header, keep-alive) from the same wrk command, after a
# short warm-up. Only berth authenticates and authorizes it; nginx and CHP
# forward anything. The workspace firewall lets only root on the host open
# connections to a workspace, so nginx's workers (`user root;`) and CHP run as
# root. Prints requests/s, p50 and p99 latency per target, and each one's
# requests/s divided by berth's. wrk, the proxies, the upstream and berth share
# this machine's CPUs (2 on the reference machine): a proxy's numbers include the
# CPU it takes from wrk and the upstream, so compare the rows of one run, not
# runs on different machines.
#
# Everything listens on 127.0.0.1 only (but the upstream, on the workspace's
# address), every wait is bounded, and whatever happens the traps stop nginx and
# CHP, delete the workspace through berth's API and wait until it is gone, stop
# berth, and remove the temporary directory.
#
# Run (as root):  benches/proxy.sh
#                 DURATION=30s CONNECTIONS=64 benches/proxy.sh
# Environment:    DURATION       each measured wrk run (default 10s; Ns or Nm)
#                 WARMUP         each warm-up run before it (default 2s)
#                 THREADS        wrk threads (default 2)
#                 CONNECTIONS    wrk connections (default 32)
#                 NGINX_WORKERS  nginx's worker_processes (default auto)
#                 TARGETS        which to run, default "direct berth nginx chp"
# Needs: what scripts/install-deps installs (wrk, nginx, configurable-http-proxy
# in /opt/berth/node). Debian's nginx package enables a system nginx on port 80
# where systemd runs (or its init script, where policy-rc.d allows); this bench
# does not use it, and runs its own nginx on free loopback ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

duration=${DURATION:-10s}
warmup=${WARMUP:-2s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-32}
nginx_workers=${NGINX_WORKERS:-auto}
targets=${TARGETS:-direct berth nginx chp}
nginx=/usr/sbin/nginx
chp=/opt/berth/node/node_modules/.bin/configurable-http-proxy
path=/user/admin/bench/x

secs() { # 10s / 2m / 10 -> seconds, or nothing if not such a duration
  [[ $1 =~ ^([1-9][0-9]{0,3})([sm]?)$ ]] || return 0
  if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
duration_s=$(secs "$duration")
warmup_s=$(secs "$warmup")
[[ -n $duration_s && -n $warmup_s ]] || die "DURATION and WARMUP must be like 10s or 1m"
[[ $threads =~ ^[1-9][0-9]{0,2}$ && $connections =~ ^[1-9][0-9]{0,4}$ ]] && ((connections >= threads)) ||
  die "THREADS and CONNECTIONS must be numbers, CONNECTIONS >= THREADS"
[[ $nginx_workers =~ ^(auto|[1-9][0-9]{0,2})$ ]] || die "NGINX_WORKERS must be auto or a number"
for t in $targets; do [[ $t =~ ^(direct|berth|nginx|chp)$ ]] || die "TARGETS: unknown target '$t'"; done
[[ $(id -u) == 0 ]] || die "the process runtime needs root, and so do the proxies (the workspace firewall)"
command -v wrk >/dev/null || die "no wrk: run scripts/install-deps"
[[ -x $nginx ]] || die "no nginx at $nginx: run scripts/install-deps"
[[ $targets != *chp* || -x $chp ]] || die "no configurable-http-proxy at $chp: run scripts/install-deps"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

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

wrk_pid=''
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
  stop_pid "$wrk_pid" # timeout passes the TERM on to wrk
  wrk_pid=''
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

build_berth
# berth serve in a session of its own, so that a Ctrl-C reaches only this script,
# whose trap then deletes the workspace through the still running berth.
printf '#!/bin/sh\nexec setsid %q "$@"\n' "$berth_bin" >"$bench_tmp/berth-setsid"
chmod 755 "$bench_tmp/berth-setsid"
berth_bin=$bench_tmp/berth-setsid
start_berth BERTH_RUNTIME=process
api_token
auth="authorization: Bearer $token"

# --- the upstream: nginx as the workspace's app. The sandbox runs it as the
# workspace's uid with read-only /usr and /etc and a private /tmp: config, pid,
# temp paths under /tmp, its log to stderr (the workspace log).
app_script=$(cat <<'SH'
set -e
d=/tmp/ngx
mkdir -p "$d"
cat >"$d/nginx.conf" <<EOF
worker_processes 1;
pid $d/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 100000000;
  server {
    listen $PORT;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
EOF
exec /usr/sbin/nginx -p "$d/" -e stderr -c "$d/nginx.conf" -g 'daemon off;'
SH
)
api POST /api/v1/profiles -H "$auth" -d "$(jq -n --arg s "$app_script" '{name: "bench",
  display_name: "Bench nginx", cpu: 1, memory_bytes: 268435456, idle_timeout_secs: 0,
  max_lifetime_secs: 0, start_timeout_secs: 60, egress: false,
  app: {kind: "command", argv: ["sh", "-c", $s]}}')" >/dev/null
ws_id=$(api POST /api/v1/workspaces -H "$auth" -d '{"name": "bench", "profile": "bench", "start": true}' | jq -r .id)
ws_log=$bench_tmp/data/workspaces/logs/$ws_id.log
deadline=$((SECONDS + 60))
while :; do
  state=$(api GET "/api/v1/workspaces/$ws_id" -H "$auth" | jq -r .state) || die "GET the workspace failed"
  [[ $state != running ]] || break
  [[ $state != failed ]] || { tail -n 20 "$ws_log" >&2; die "the workspace failed to start"; }
  ((SECONDS < deadline)) || { tail -n 20 "$ws_log" >&2; die "the workspace was not running within 60 s"; }
  sleep 0.1
done
upstream=$(jq -r .upstream "$bench_tmp/data/workspaces/run/$ws_id.json")
[[ $upstream =~ ^10\.213\.[0-9]+\.[0-9]+:[0-9]+$ ]] || die "unexpected upstream '$upstream'"
echo "workspace $ws_id running, upstream http://$upstream" >&2

declare -A url
url[direct]=http://$upstream$path
url[berth]=http://$addr$path

# --- nginx in front of it, as root (the workspace firewall), keep-alive both ways
if [[ $targets == *nginx* ]]; then
  nd=$bench_tmp/nginx
  mkdir -p "$nd"
  nginx_port=$(free_port)
  cat >"$nd/nginx.conf" <<EOF
user root;
worker_processes $nginx_workers;
pid $nd/nginx.pid;
error_log $nd/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $nd/body;
  proxy_temp_path $nd/proxy;
  fastcgi_temp_path $nd/fastcgi;
  uwsgi_temp_path $nd/uwsgi;
  scgi_temp_path $nd/scgi;
  keepalive_requests 100000000;
  upstream workspace {
    server $upstream;
    keepalive 256;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://workspace;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
    }
  }
}
EOF
  "$nginx" -q -t -p "$nd/" -e "$nd/error.log" -c "$nd/nginx.conf" || die "nginx: bad configuration"
  setsid "$nginx" -p "$nd/" -e "$nd/error.log" -c "$nd/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  url[nginx]=http://127.0.0.1:$nginx_port$path
fi

# --- configurable-http-proxy in front of it, as root, the route as its default target
if [[ $targets == *chp* ]]; then
  chp_port=$(free_port)
  chp_api_port=$(free_port)
  CONFIGPROXY_AUTH_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
    setsid "$chp" --ip 127.0.0.1 --port "$chp_port" --api-ip 127.0.0.1 --api-port "$chp_api_port" \
    --default-target "http://$upstream" --log-level warn >"$bench_tmp/chp.log" 2>&1 &
  chp_pid=$!
  url[chp]=http://127.0.0.1:$chp_port$path
fi

# Every target answers `200 ok` before it is measured (30 s at most each).
for t in $targets; do
  deadline=$((SECONDS + 30))
  until [[ $(curl -s --max-time 2 -H "$auth" -w ' %{http_code}' "${url[$t]}") == $'ok\n 200' ]]; do
    if ((SECONDS >= deadline)); then
      [[ $t != nginx ]] || tail -n 20 "$nd/error.log" >&2
      [[ $t != chp ]] || tail -n 20 "$bench_tmp/chp.log" >&2
      die "$t (${url[$t]}) did not answer 200 ok within 30 s"
    fi
    sleep 0.1
  done
done
[[ -z $nginx_pid ]] || mapfile -t nginx_workers_pids < <(pgrep -P "$nginx_pid" || true)

# run_wrk SECONDS OUT ARGS...: wrk with the common arguments, its report in OUT.
# In the background and waited for, so that a Ctrl-C or TERM runs the traps at
# once: wrk itself stops early on SIGINT and exits 0, which would make a
# foreground run look complete.
run_wrk() {
  local s=$1 out=$2 rc=0
  shift 2
  timeout $((s + 30)) wrk -t"$threads" -c"$connections" --timeout 5s -H "$auth" "$@" >"$out" &
  wrk_pid=$!
  wait "$wrk_pid" || rc=$?
  wrk_pid=''
  return "$rc"
}

# --- measure: a warm-up, then the measured run, one target after the other
declare -A rps p50 p99 non2xx errors
load_before=$(load)
for t in $targets; do
  echo "$t: warm-up $warmup, then wrk -t$threads -c$connections -d$duration ${url[$t]}" >&2
  run_wrk "$warmup_s" "$bench_tmp/warmup-$t.txt" -d"$warmup" "${url[$t]}" || die "$t: the warm-up wrk run failed"
  run_wrk "$duration_s" "$bench_tmp/wrk-$t.txt" -d"$duration" --latency "${url[$t]}" || die "$t: wrk failed"
  report=$(<"$bench_tmp/wrk-$t.txt")
  summary=$(wrk_parse <<<"$report") || { printf '%s\n' "$report" >&2; die "$t: could not parse wrk's report"; }
  read -r "rps[$t]" "p50[$t]" "p99[$t]" "non2xx[$t]" "errors[$t]" <<<"$summary"
done
load_after=$(load)

# The proxies and the workspace go before the report.
stop_proxies
delete_workspace || die "deleting the workspace failed"

declare -A label=([direct]="direct" [berth]="berth" [nginx]="nginx" [chp]="configurable-http-proxy")
printf '\nberth %s, %s CPUs, wrk -t%s -c%s -d%s (after %s warm-up), GET %s, keep-alive\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" "$threads" "$connections" \
  "$duration" "$warmup" "$path"
printf 'upstream: nginx in a berth workspace (1 CPU) at %s; nginx proxy: worker_processes %s\n' \
  "$upstream" "$nginx_workers"
printf '%-26s %10s %9s %9s %9s %8s %9s\n' target "req/s" "p50 ms" "p99 ms" "vs berth" non-2xx "sock err"
bad=0
for t in $targets; do
  ratio=-
  [[ -n ${rps[berth]:-} ]] && ratio=$(awk -v a="${rps[$t]}" -v b="${rps[berth]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf '%-26s %10.0f %9.3f %9.3f %9s %8d %9d\n' "${label[$t]}" "${rps[$t]}" "${p50[$t]}" "${p99[$t]}" \
    "$ratio" "${non2xx[$t]}" "${errors[$t]}"
  ((non2xx[$t] == 0 && errors[$t] == 0)) || bad=1
done
printf "vs berth: the target's requests/s divided by berth's. wrk, the proxies, berth and the\n"
printf 'upstream all share these %s CPUs. Load average before / after: %s / %s\n' "$(nproc)" "$load_before" "$load_after"
((bad == 0)) || die "some responses were not 2xx or failed (see the non-2xx and sock err columns); these numbers are not valid"

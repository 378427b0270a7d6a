#!/usr/bin/env bash
# WebSockets through berth's proxy, nginx and configurable-http-proxy (CHP),
# side by side in one run, against the same upstream: CONNECTIONS WebSockets
# (default 1,000), each sending a SIZE-byte message (default 1 KiB) every
# INTERVAL_MS (default 50 ms), as notebooks' kernels and terminals do, and
# timing each echo.
#
# - the upstream: `berth-bench echo` (crates/bench-tools: a Tokio WebSocket
#   app that sends every message back) as a berth workspace's app (process
#   runtime: bubblewrap, cgroup, network namespace; 1 CPU, 256 MiB). The
#   sandbox sees /usr, /etc, its home and /tmp only, so the bench copies the
#   program into the workspace's home as it starts.
# - direct:  the load straight to the upstream, ws://10.213.x.2:8888/…
# - berth:   `berth serve`'s ws://127.0.0.1:…/user/admin/echo/…, with an API
#            token (authenticated and authorized once per WebSocket)
# - nginx:   Debian's nginx, one worker (NGINX_WORKERS), upgrade headers passed
# - configurable-http-proxy: CHP 5.3.0 (node, one process), --default-target
#
# ROUNDS rounds (default 3), each running the load against every target in
# turn; the report gives each figure's median over the rounds: messages
# echoed, round-trip p50/p90/p99/max, and each proxy's peak resident memory
# (nginx: master and workers) while loaded. The load generator, the
# proxies, berth and the upstream share this machine's CPUs: compare the rows
# of one run. Every wait is bounded; whatever happens, the traps stop the
# proxies, delete the workspace through berth's API, stop berth and remove
# the temporary directory.
#
# Run (as root):  benches/websocket.sh
#                 CONNECTIONS=200 DURATION=20s ROUNDS=1 benches/websocket.sh
# Environment:    CONNECTIONS (1000), INTERVAL_MS (50), SIZE (1024), DURATION
#                 (10s), ROUNDS (3), NGINX_WORKERS (1), TARGETS ("direct berth
#                 nginx chp")
# Needs: what scripts/install-deps installs (nginx, CHP, cargo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh
source benches/proxies.sh

connections=${CONNECTIONS:-1000}
interval_ms=${INTERVAL_MS:-50}
size=${SIZE:-1024}
duration=${DURATION:-10s}
rounds=${ROUNDS:-3}
nginx_workers=${NGINX_WORKERS:-1}
targets=${TARGETS:-direct berth nginx chp}
path=/user/admin/echo/ws

duration_s=$(secs "$duration")
[[ -n $duration_s ]] || die "DURATION must be like 10s or 1m"
[[ $connections =~ ^[1-9][0-9]{0,4}$ ]] && ((connections <= 16000)) || die "CONNECTIONS must be a number up to 16000"
[[ $interval_ms =~ ^[1-9][0-9]{0,4}$ ]] || die "INTERVAL_MS must be a number"
[[ $size =~ ^[1-9][0-9]{1,6}$ ]] && ((size >= 16)) || die "SIZE must be a number of bytes, at least 16"
[[ $rounds =~ ^[1-9]$ ]] || die "ROUNDS must be a number from 1 to 9"
[[ $nginx_workers =~ ^(auto|[1-9][0-9]{0,2})$ ]] || die "NGINX_WORKERS must be auto or a number"
for t in $targets; do [[ $t =~ ^(direct|berth|nginx|chp)$ ]] || die "TARGETS: unknown target '$t'"; done

echo "building the load generator (cargo build --release -p bench-tools)..." >&2
cargo build --release -p bench-tools
tool="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/berth-bench"
[[ -x $tool ]] || die "no berth-bench at $tool"

start_berth_process

# The app waits for its program, which the hook copies into the home as soon
# as the home is there (and again if a mount came over it).
copy_echo() {
  [[ -d $ws_home && ! -x $ws_home/.berth-bench ]] || return 0
  cp "$tool" "$ws_home/.berth-bench.tmp" && chmod 755 "$ws_home/.berth-bench.tmp" &&
    mv "$ws_home/.berth-bench.tmp" "$ws_home/.berth-bench" || true
}
on_home=copy_echo
# shellcheck disable=SC2016 # expanded in the workspace
start_workspace echo 'until [ -x "$HOME/.berth-bench" ]; do sleep 0.05; done
exec "$HOME/.berth-bench" echo --port "$PORT"'
on_home=

[[ $targets != *nginx* ]] || start_nginx 64
[[ $targets != *chp* ]] || start_chp

# ws_load TARGET CONNECTIONS SECONDS OUT: the load generator against TARGET;
# sets `peak` to the proxy's largest resident memory meanwhile.
ws_load() {
  local t=$1 rc=0 now url=${base[$1]/http:/ws:}$path
  timeout $(($3 + 120)) "$tool" load --url "$url" --authorization "Bearer $token" \
    --connections "$2" --interval-ms "$interval_ms" --size "$size" --seconds "$3" >"$4" 2>&1 &
  load_pid=$!
  peak=0
  while kill -0 "$load_pid" 2>/dev/null; do
    now=$(rss_mib "$t")
    ((now <= peak)) || peak=$now
    sleep 0.5
  done
  wait "$load_pid" || rc=$?
  load_pid=''
  return "$rc"
}

# Every target echoes one WebSocket first (30 s at most each).
for t in $targets; do
  deadline=$((SECONDS + 30))
  until ws_load "$t" 1 1 "$bench_tmp/check.txt"; do
    ((SECONDS < deadline)) || { cat "$bench_tmp/check.txt" >&2; proxy_log "$t"; die "$t did not echo within 30 s"; }
    sleep 0.5
  done
done
nginx_started

declare -A messages errors p50 p90 p99 max rss
load_before=$(load)
for ((round = 1; round <= rounds; round++)); do
  for t in $targets; do
    echo "round $round/$rounds, $t: $connections WebSockets, $size B every $interval_ms ms for $duration" >&2
    ws_load "$t" "$connections" "$duration_s" "$bench_tmp/load.txt" ||
      { cat "$bench_tmp/load.txt" >&2; proxy_log "$t"; die "$t: the load failed"; }
    line=$(tail -n 1 "$bench_tmp/load.txt")
    for k in messages errors p50 p90 p99 max; do
      v=$(grep -o "\b${k}[a-z_]*=[0-9.]*" <<<"$line" | cut -d= -f2)
      [[ -n $v ]] || die "$t: could not read $k from '$line'"
      declare -n acc=$k
      acc[$t]+="$v "
      unset -n acc
    done
    rss[$t]+="$peak "
  done
done
load_after=$(load)

stop_proxies
delete_workspace || die "deleting the workspace failed"

med() { tr ' ' '\n' <<<"${1% }" | median; }
declare -A label=([direct]="direct" [berth]="berth" [nginx]="nginx" [chp]="configurable-http-proxy")
printf '\nberth %s, %s CPUs: %s WebSockets, %s B every %s ms for %s, median of %s rounds\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" "$connections" "$size" \
  "$interval_ms" "$duration" "$rounds"
printf '%-24s %10s %7s %9s %9s %9s %9s %9s\n' target messages errors "p50 ms" "p90 ms" "p99 ms" "max ms" "RSS MiB"
bad=''
for t in $targets; do
  mem=$(med "${rss[$t]}")
  [[ $t != direct ]] || mem=-
  e=$(med "${errors[$t]}")
  printf '%-24s %10.0f %7.0f %9.3f %9.3f %9.3f %9.3f %9s\n' "${label[$t]}" "$(med "${messages[$t]}")" "$e" \
    "$(med "${p50[$t]}")" "$(med "${p90[$t]}")" "$(med "${p99[$t]}")" "$(med "${max[$t]}")" "$mem"
  [[ $e == 0 ]] || bad+=" $t"
done
printf 'round trip: a message sent until its echo came back. Load average before / after: %s / %s\n' \
  "$load_before" "$load_after"
[[ -z $bad ]] || die "some WebSockets failed (errors column):$bad; these numbers are not valid"

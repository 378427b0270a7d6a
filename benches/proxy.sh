#!/usr/bin/env bash
# Compares berth's built-in proxy with nginx and configurable-http-proxy (CHP, what
# JupyterHub puts in front of its servers), side by side in one run, against the
# same upstream:
#
# - the upstream: nginx as a berth workspace's app (process runtime: bubblewrap,
#   cgroup, network namespace; a profile of 1 CPU and 256 MiB), serving static
#   bodies of each size in SIZES at /user/admin/bench/<size>, keep-alive without
#   a request limit. berth routes /user/admin/bench/… to it; the others reach
#   the same address (the workspace's upstream, 10.213.x.2:8888, read from
#   <data>/workspaces/run/<id>.json).
# - direct:  wrk straight to the upstream (what any proxy adds is measured against it)
# - berth:   `berth serve`'s /user/admin/bench/<size>, with an API token (auth from
#            berth's cache, the owner's route, pooled keep-alive upstream)
# - nginx:   Debian's nginx, `proxy_pass` with an upstream keep-alive pool as large
#            as the most connections measured (NGINX_WORKERS worker processes,
#            default 1, as the goals of issue 17 compare)
# - configurable-http-proxy: CHP 5.3.0 (node, one process) with --default-target
#
# Every target gets the same request (GET with the same `Authorization: Bearer`
# header, keep-alive) from the same wrk command, after a short warm-up. Only
# berth authenticates and authorizes it; nginx and CHP forward anything. The
# workspace firewall lets only root on the host open connections to a
# workspace, so nginx's workers (`user root;`) and CHP run as root.
#
# The load: every body size in SIZES at every count in CONNECTIONS, and one
# connection (1 KiB) for the latency a proxy adds over direct. ROUNDS rounds,
# each running every load against every target in turn (interleaved, so a
# slow minute of the machine hits all alike); the report gives each figure's
# median over the rounds: requests/s, p50 and p99 latency, each target's
# requests/s divided by berth's, the p50 added over direct at one connection,
# and each proxy's peak resident memory (nginx: master and workers) while
# loaded. wrk, the proxies, the upstream and berth share this machine's CPUs
# (2 on the reference machine): compare the rows of one run, not runs on
# different machines.
#
# Everything listens on 127.0.0.1 only (but the upstream, on the workspace's
# address), every wait is bounded, and whatever happens the traps stop nginx and
# CHP, delete the workspace through berth's API and wait until it is gone, stop
# berth, and remove the temporary directory.
#
# Run (as root):  benches/proxy.sh
#                 DURATION=10s ROUNDS=1 SIZES=40960 CONNECTIONS=1000 benches/proxy.sh
# Environment:    DURATION       each measured wrk run (default 5s; Ns or Nm)
#                 WARMUP         each warm-up run before it (default 1s)
#                 ROUNDS         interleaved rounds, the median reported (default 3)
#                 THREADS        wrk threads (default 2)
#                 SIZES          response body sizes in bytes (default "1024 40960")
#                 CONNECTIONS    wrk connection counts (default "64 1000")
#                 NGINX_WORKERS  nginx's worker_processes (default 1)
#                 TARGETS        which to run, default "direct berth nginx chp"
# Needs: what scripts/install-deps installs (wrk, nginx, configurable-http-proxy
# in /opt/berth/node). Debian's nginx package enables a system nginx on port 80
# where systemd runs (or its init script, where policy-rc.d allows); this bench
# does not use it, and runs its own nginx on free loopback ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh
source benches/proxies.sh

duration=${DURATION:-5s}
warmup=${WARMUP:-1s}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
sizes=${SIZES:-1024 40960}
connections=${CONNECTIONS:-64 1000}
nginx_workers=${NGINX_WORKERS:-1}
targets=${TARGETS:-direct berth nginx chp}
prefix=/user/admin/bench

duration_s=$(secs "$duration")
warmup_s=$(secs "$warmup")
[[ -n $duration_s && -n $warmup_s ]] || die "DURATION and WARMUP must be like 10s or 1m"
[[ $rounds =~ ^[1-9]$ ]] || die "ROUNDS must be a number from 1 to 9"
[[ $threads =~ ^[1-9][0-9]{0,2}$ ]] || die "THREADS must be a number"
max_connections=1
for c in $connections; do
  [[ $c =~ ^[1-9][0-9]{0,4}$ ]] && ((c >= threads && c <= 16000)) ||
    die "CONNECTIONS: '$c' is not a number from THREADS to 16000"
  ((c <= max_connections)) || max_connections=$c
done
for z in $sizes; do [[ $z =~ ^[1-9][0-9]{0,7}$ ]] || die "SIZES: '$z' is not a size in bytes"; done
[[ -n $sizes && -n $connections ]] || die "SIZES and CONNECTIONS must name at least one each"
[[ $nginx_workers =~ ^(auto|[1-9][0-9]{0,2})$ ]] || die "NGINX_WORKERS must be auto or a number"
for t in $targets; do [[ $t =~ ^(direct|berth|nginx|chp)$ ]] || die "TARGETS: unknown target '$t'"; done
command -v wrk >/dev/null || die "no wrk: run scripts/install-deps"

start_berth_process

# --- the upstream: nginx as the workspace's app. The sandbox runs it as the
# workspace's uid with read-only /usr and /etc and a private /tmp: config, pid,
# temp paths and the bodies under /tmp, its log to stderr (the workspace log).
# Every size served (and 1024, for the latency run) is a file of that many bytes.
app_script=$(cat <<SH
set -e
d=/tmp/ngx
mkdir -p "\$d/www$prefix"
for z in 1024 $sizes; do head -c "\$z" /dev/zero | tr '\\0' x >"\$d/www$prefix/\$z"; done
cat >"\$d/nginx.conf" <<EOF
worker_processes 1;
pid \$d/nginx.pid;
events { worker_connections 40000; }
http {
  access_log off;
  client_body_temp_path \$d/body;
  proxy_temp_path \$d/proxy;
  fastcgi_temp_path \$d/fastcgi;
  uwsgi_temp_path \$d/uwsgi;
  scgi_temp_path \$d/scgi;
  keepalive_requests 100000000;
  server {
    listen \$PORT;
    root \$d/www;
    default_type text/plain;
  }
}
EOF
exec /usr/sbin/nginx -p "\$d/" -e stderr -c "\$d/nginx.conf" -g 'daemon off;'
SH
)
start_workspace bench "$app_script"

[[ $targets != *nginx* ]] || start_nginx "$max_connections"
[[ $targets != *chp* ]] || start_chp

# Every target answers 200 with the 1 KiB body before it is measured (30 s at most each).
for t in $targets; do
  deadline=$((SECONDS + 30))
  until [[ $(curl -s --max-time 2 -H "$auth" -o /dev/null -w '%{http_code} %{size_download}' \
    "${base[$t]}$prefix/1024") == '200 1024' ]]; do
    if ((SECONDS >= deadline)); then
      proxy_log "$t"
      die "$t (${base[$t]}$prefix/1024) did not answer 200 with 1024 bytes within 30 s"
    fi
    sleep 0.1
  done
done
nginx_started

# run_wrk TARGET SECONDS OUT ARGS...: wrk with the common arguments, its report
# in OUT; sets `peak` to TARGET's largest resident memory seen meanwhile. In the
# background and waited for, so that a Ctrl-C or TERM runs the traps at once:
# wrk itself stops early on SIGINT and exits 0, which would make a foreground
# run look complete.
run_wrk() {
  local t=$1 s=$2 out=$3 rc=0 now
  shift 3
  timeout $((s + 30)) wrk --timeout 5s -H "$auth" "$@" >"$out" &
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

# --- measure: ROUNDS rounds; each runs every load against every target in
# turn, a warm-up before each measured run. A load is SIZE:CONNECTIONS.
loads=()
for z in $sizes; do for c in $connections; do loads+=("$z:$c"); done; done
loads+=("1024:1")
declare -A rps p50 p99 rss
bad=''
load_before=$(load)
for ((round = 1; round <= rounds; round++)); do
  for l in "${loads[@]}"; do
    z=${l%:*} c=${l#*:}
    th=$((c < threads ? c : threads))
    for t in $targets; do
      u=${base[$t]}$prefix/$z
      echo "round $round/$rounds, $t: wrk -t$th -c$c -d$duration $u (after $warmup)" >&2
      run_wrk "$t" "$warmup_s" "$bench_tmp/warmup.txt" -t"$th" -c"$c" -d"$warmup" "$u" ||
        die "$t: the warm-up wrk run failed"
      run_wrk "$t" "$duration_s" "$bench_tmp/wrk.txt" -t"$th" -c"$c" -d"$duration" --latency "$u" ||
        die "$t: wrk failed"
      report=$(<"$bench_tmp/wrk.txt")
      summary=$(wrk_parse <<<"$report") || { printf '%s\n' "$report" >&2; die "$t: could not parse wrk's report"; }
      read -r r50 r99 rr n2 er <<<"$(awk '{ print $2, $3, $1, $4, $5 }' <<<"$summary")"
      k="$t $l"
      rps[$k]+="$rr "
      p50[$k]+="$r50 "
      p99[$k]+="$r99 "
      rss[$k]+="$peak "
      ((n2 == 0 && er == 0)) || bad+="  $t at $l (round $round): $n2 non-2xx, $er socket errors"$'\n'
    done
  done
done
load_after=$(load)

# The proxies and the workspace go before the report.
stop_proxies
delete_workspace || die "deleting the workspace failed"

med() { tr ' ' '\n' <<<"${1% }" | median; }
declare -A label=([direct]="direct" [berth]="berth" [nginx]="nginx" [chp]="configurable-http-proxy")
printf '\nberth %s, %s CPUs, wrk -t%s, %s per run after %s warm-up, median of %s interleaved rounds\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" "$threads" "$duration" "$warmup" "$rounds"
printf 'upstream: nginx in a berth workspace (1 CPU) at %s; nginx proxy: worker_processes %s, keepalive %s\n' \
  "$upstream" "$nginx_workers" "$max_connections"
printf '%-8s %6s  %-24s %10s %9s %9s %9s %9s\n' body conns target "req/s" "p50 ms" "p99 ms" "vs berth" "RSS MiB"
for l in "${loads[@]}"; do
  z=${l%:*} c=${l#*:}
  b=$(med "${rps[berth $l]:-}")
  for t in $targets; do
    k="$t $l"
    r=$(med "${rps[$k]}")
    ratio=$(awk -v a="$r" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    mem=$(med "${rss[$k]}")
    [[ $t != direct ]] || mem=-
    printf '%-8s %6s  %-24s %10.0f %9.3f %9.3f %9s %9s\n' "$z B" "$c" "${label[$t]}" "$r" \
      "$(med "${p50[$k]}")" "$(med "${p99[$k]}")" "$ratio" "$mem"
  done
done
if [[ $targets == *direct* ]]; then
  printf '\nlatency added over direct at 1 connection (p50, 1024 B):'
  d=$(med "${p50[direct 1024:1]}")
  for t in $targets; do
    [[ $t != direct ]] || continue
    printf '  %s +%.0f us' "${label[$t]}" "$(awk -v a="$(med "${p50[$t 1024:1]}")" -v d="$d" 'BEGIN { print (a - d) * 1000 }')"
  done
  printf '\n'
fi
printf "vs berth: the target's requests/s divided by berth's. wrk, the proxies, berth and the\n"
printf 'upstream all share these %s CPUs. Load average before / after: %s / %s\n' "$(nproc)" "$load_before" "$load_after"
[[ -z $bad ]] || die "some responses were not 2xx or failed; these numbers are not valid:"$'\n'"$bad"

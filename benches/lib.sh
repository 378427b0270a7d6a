# shellcheck shell=bash
# Shared by the scripts in benches/; source it, do not run it. Sourcing it makes a
# temporary directory and installs the traps that, on any exit, stop the berth it
# started and remove that directory. Everything listens on 127.0.0.1 only, and
# every wait is bounded.
#
# Functions, in the order a bench calls them (each sets the globals it names):
#   build_berth  cargo build --release -p berth       sets berth_bin
#   start_berth [VAR=value...]  berth serve on a free loopback port, with extra
#                BERTH_* settings (default runtime: none)  sets berth_pid, addr
#   api_token    log in as admin, create a token      sets token
#   api METHOD PATH [curl args...]  one request; prints the body, dies unless 2xx
#   wrk_parse    wrk --latency report on stdin -> "requests/s p50_ms p99_ms non_2xx socket_errors"

bench_password=bench-password-123
bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
berth_pid=

die() {
  printf 'error: %s\n' "$*" >&2
  local f
  for f in "$bench_tmp"/berth.out "$bench_tmp"/berth.err; do
    [[ -s $f ]] && { printf -- '--- last lines of %s:\n' "${f##*/}" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

bench_cleanup() {
  if [[ -n $berth_pid ]] && kill -0 "$berth_pid" 2>/dev/null; then
    kill "$berth_pid" 2>/dev/null || true
    local _
    for _ in {1..50}; do # up to 5 s for a clean shutdown
      kill -0 "$berth_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$berth_pid" 2>/dev/null || true
    wait "$berth_pid" 2>/dev/null || true
  fi
  rm -rf "$bench_tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_berth() {
  echo "building berth (cargo build --release -p berth)..." >&2
  cargo build --release -p berth
  berth_bin="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/berth"
  [[ -x $berth_bin ]] || die "no berth binary at $berth_bin"
}

start_berth() {
  local port deadline
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$bench_tmp/data"
  chmod 711 "$bench_tmp" # workspace users traverse it to reach their homes
  # A clean environment and directory: no berth.toml, BERTH_* or RUST_LOG of the caller's.
  (cd "$bench_tmp" && exec env -i PATH="$PATH" HOME="$HOME" BERTH_ADMIN_PASSWORD="$bench_password" \
    BERTH_RUNTIME=none "$@" "$berth_bin" serve --bind "127.0.0.1:$port" --data-dir "$bench_tmp/data") \
    >"$bench_tmp/berth.out" 2>"$bench_tmp/berth.err" &
  berth_pid=$!
  deadline=$((SECONDS + 60))
  addr=
  until [[ -n $addr ]]; do
    kill -0 "$berth_pid" 2>/dev/null || die "berth serve exited while starting"
    ((SECONDS < deadline)) || die "berth serve did not print 'listening on' within 60 s"
    sleep 0.1
    addr=$(grep -aho 'listening on http://[0-9.:]*' "$bench_tmp/berth.out" "$bench_tmp/berth.err" |
      head -n 1 | sed 's|.*http://||') || true
  done
  [[ $addr == 127.0.0.1:* ]] || die "berth listens on $addr, not on 127.0.0.1"
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$addr/healthz") == 200 ]]; do
    ((SECONDS < deadline)) || die "GET /healthz did not answer 200 within 60 s"
    sleep 0.1
  done
  echo "berth serve (pid $berth_pid) listening on http://$addr" >&2
}

api() {
  local method=$1 path=$2 out status
  shift 2
  out=$(curl -sS --max-time 10 -X "$method" -H 'content-type: application/json' \
    -w '\n%{http_code}' "$@" "http://$addr$path") || die "$method $path: curl failed"
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $status == 2?? ]] || die "$method $path: HTTP $status: $out"
  printf '%s\n' "$out"
}

api_token() {
  local csrf session
  csrf=$(api POST /api/v1/auth/login -D "$bench_tmp/login.headers" \
    -d "{\"username\":\"admin\",\"password\":\"$bench_password\"}" | jq -r .csrf_token)
  session=$(tr -d '\r' <"$bench_tmp/login.headers" |
    sed -n 's/^[Ss]et-[Cc]ookie: *berth_session=\([^;]*\).*/\1/p' | head -n 1)
  [[ -n $session && $csrf != null ]] || die "login: no berth_session cookie or csrf_token"
  token=$(api POST /api/v1/users/admin/tokens -H "cookie: berth_session=$session" \
    -H "x-csrf-token: $csrf" -d '{"note":"bench"}' | jq -r .token)
  [[ -n $token && $token != null ]] || die "token: no token in the response"
}

wrk_parse() {
  awk '
    # wrk prints times as 812.00us, 1.20ms, 1.05s or 1.00m
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { errors = $4 + $6 + $8 + $10 }
    END {
      if (rps == "" || p50 == "" || p99 == "") exit 1
      printf "%s %.3f %.3f %d %d\n", rps, p50, p99, non2xx, errors
    }'
}

# For benches that run a JupyterHub beside berth (each sets hub_pid, token):
#   hub_cgroup NAME  makes the pids cgroup every process of JupyterHub's side runs
#                    in (sets cg), and installs the EXIT trap that deletes berth's
#                    workspaces, stops JupyterHub, empties and removes the cgroup,
#                    then does bench_cleanup
#   in_cg CMD...     becomes CMD, in that cgroup and in a session of its own (no
#                    terminal SIGINT); run it in the background, so $! is CMD's pid
#   cg_kill          signals everything in the cgroup until it is empty (bounded)
#   hub_stop         stops JupyterHub (its servers and proxy), then cg_kill
#   berth_delete_all deletes every berth workspace through the API and waits
#                    (300 s at most) until berth has removed them; never dies
# start_berth_for_workspaces: berth serve with the process runtime and no quota
# in the way, in a session of its own, so that a Ctrl-C reaches only the bench,
# whose trap then deletes the workspaces through the still running berth.
start_berth_for_workspaces() {
  printf '#!/bin/sh\nexec setsid %q "$@"\n' "$berth_bin" >"$bench_tmp/berth-setsid"
  chmod 755 "$bench_tmp/berth-setsid"
  berth_bin=$bench_tmp/berth-setsid
  start_berth BERTH_RUNTIME=process BERTH_QUOTA__MAX_WORKSPACES=100000 \
    BERTH_QUOTA__MAX_CPU=100000 BERTH_QUOTA__MAX_MEMORY_BYTES=1099511627776
}

hub_pid=
token=
hub_cgroup() {
  if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
    cg=/sys/fs/cgroup/berth-bench-$1.$$
  else
    cg=/sys/fs/cgroup/pids/berth-bench-$1.$$
  fi
  mkdir "$cg"
  trap hub_cleanup EXIT
}

# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
in_cg() { exec setsid sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

cg_kill() {
  local sig=TERM i pids
  for i in {1..100}; do # 5 s of TERM, then KILL
    pids=$(cat "$cg/cgroup.procs" 2>/dev/null) || return 0
    [[ -n $pids ]] || return 0
    ((i > 50)) && sig=KILL
    # shellcheck disable=SC2086
    kill -s "$sig" $pids 2>/dev/null || true
    sleep 0.1
  done
  echo "warning: processes left in $cg: $(tr '\n' ' ' <"$cg/cgroup.procs")" >&2
}

hub_stop() {
  local _
  if [[ -n $hub_pid ]] && kill -0 "$hub_pid" 2>/dev/null; then
    kill "$hub_pid" 2>/dev/null || true
    for _ in {1..300}; do # up to 30 s
      kill -0 "$hub_pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  cg_kill
  [[ -z $hub_pid ]] || wait "$hub_pid" 2>/dev/null || true
  hub_pid=
}

berth_delete_all() {
  [[ -n $berth_pid && -n $token ]] && kill -0 "$berth_pid" 2>/dev/null || return 0
  local auth="authorization: Bearer $token" ids deadline=$((SECONDS + 300))
  ids=$(curl -sS --max-time 10 -H "$auth" "http://$addr/api/v1/workspaces?limit=500" | jq -r '.items[].id') ||
    { echo "warning: could not list berth workspaces to delete them" >&2; return 1; }
  [[ -z $ids ]] && return 0
  # shellcheck disable=SC2046,SC2086
  curl -sS --max-time 120 -X DELETE -H "$auth" $(printf "http://$addr/api/v1/workspaces/%s " $ids) >/dev/null || true
  until [[ $(curl -sS --max-time 10 -H "$auth" "http://$addr/api/v1/workspaces?limit=1" | jq '.items | length') == 0 ]]; do
    ((SECONDS < deadline)) || { echo "warning: berth workspaces were not all deleted in 300 s" >&2; return 1; }
    sleep 0.2
  done
}

hub_cleanup() {
  berth_delete_all || true
  hub_stop
  [[ -z ${cg:-} ]] || rmdir "$cg" 2>/dev/null || echo "warning: could not remove $cg" >&2
  bench_cleanup # stops berth serve, removes $bench_tmp
}

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

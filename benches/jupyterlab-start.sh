#!/usr/bin/env bash
# Compares starting N JupyterLab servers at once with berth and with JupyterHub 6,
# on this machine, one after the other in one run:
#
# - berth: `berth serve` with the process runtime (bubblewrap, cgroups, a network
#   namespace each); N workspaces of a profile with `app = jupyterlab` (1 CPU,
#   1 GiB) are created stopped, then all asked to start at once
#   (POST /api/v1/workspaces/{id}/start); ready = state `running`.
# - JupyterHub: the pinned jupyterhub of the managed environment (/opt/berth/jupyter,
#   scripts/install-deps) with SimpleLocalProcessSpawner (jupyterhub-singleuser,
#   no isolation) behind configurable-http-proxy; N users are created, then all
#   asked to start at once (POST /hub/api/users/{name}/server); ready =
#   `servers[""].ready`.
#
# Both sides are driven the same way: one thread per server sends its start
# request at the same moment, and one list request every POLL seconds
# (GET /api/v1/workspaces, GET /hub/api/users) sees which are ready. Prints for
# each: the time from the first start request until all N are ready, request to
# ready per server (p50 / p95 / max), the app's own start time measured outside
# both (`jupyter-lab` on a loopback port with a base URL, until GET <base URL>
# answers below 500; median of 3), the control-plane overhead per server
# (request to ready minus the app alone), and the ratios berth / JupyterHub.
# With N servers starting on few cores, request to ready is mostly CPU contention
# (N JupyterLab starts share the machine); compare the two sides, not the
# absolute overhead. Everything listens on 127.0.0.1 only, every wait is bounded
# (600 s for all to be ready), and whatever happens the traps delete the berth
# workspaces through the API, stop JupyterHub, kill every process either side or
# the bare app started, and remove the temporary directories.
#
# Run (as root):  N=10 benches/jupyterlab-start.sh
#                 SIDES=jupyterhub N=4 benches/jupyterlab-start.sh
# Environment:    N      servers per side (default 10, at most 200)
#                 SIDES  which sides to run, default "jupyterhub berth"
#                 POLL   seconds between readiness polls (default 0.1)
# Needs: what scripts/install-deps installs (the jupyter environment, and
# configurable-http-proxy in /opt/berth/node).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

n=${N:-10}
sides=${SIDES:-jupyterhub berth}
poll=${POLL:-0.1}
jupyter_env=/opt/berth/jupyter
chp=/opt/berth/node/node_modules/.bin/configurable-http-proxy
[[ $n =~ ^[1-9][0-9]{0,2}$ ]] && ((n <= 200)) || die "N must be a number from 1 to 200 (JupyterHub pages users by 200)"
[[ $poll =~ ^[0-9]*\.?[0-9]+$ ]] || die "POLL must be a number of seconds"
for s in $sides; do [[ $s == jupyterhub || $s == berth ]] || die "SIDES: unknown side '$s'"; done
[[ $(id -u) == 0 ]] || die "the process runtime (and the cgroup this script kills by) needs root"
[[ -x $jupyter_env/bin/jupyter-lab && -x $jupyter_env/bin/jupyterhub ]] ||
  die "no jupyter environment at $jupyter_env: run scripts/install-deps"
[[ $sides != *jupyterhub* || -x $chp ]] || die "no configurable-http-proxy at $chp: run scripts/install-deps"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Every process of the JupyterHub side and of the bare app runs in one pids cgroup
# of this script's own: the spawner starts servers in their own sessions, so only
# the cgroup finds them all (it is outside berth's `berth` parent, which berth
# prunes). berth itself and its workspaces are not in it.
hub_cgroup jupyterlab

# --- the app alone: jupyter-lab as berth's process runtime starts it, minus the sandbox
allow_root=()
[[ $(id -u) == 0 ]] && allow_root=(--allow-root)
app_alone_once() { # prints the seconds from exec to GET <base URL> answering < 500
  local port home pid t0 t1 code deadline=$((SECONDS + 120))
  port=$(free_port)
  home=$(mktemp -d "$bench_tmp/alone.XXXXXX")
  t0=$EPOCHREALTIME
  in_cg env -i PATH="$PATH" HOME="$home" "$jupyter_env/bin/jupyter-lab" --no-browser --ip=127.0.0.1 \
    --port="$port" --ServerApp.base_url=/user/bench/alone/ --ServerApp.root_dir="$home" \
    --IdentityProvider.token= "${allow_root[@]}" >"$home.log" 2>&1 &
  pid=$!
  until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/user/bench/alone/") &&
    ((code > 0 && code < 500)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$home.log" >&2; die "jupyter-lab exited while starting"; }
    ((SECONDS < deadline)) || { tail -n 20 "$home.log" >&2; die "jupyter-lab did not answer within 120 s"; }
    sleep 0.02
  done
  t1=$EPOCHREALTIME
  cg_kill
  wait "$pid" 2>/dev/null || true
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}

# The driver: starts N servers at once on one side and records when each is ready.
cat >"$bench_tmp/drive.py" <<'PY'
import concurrent.futures as cf, http.client, json, os, sys, threading, time

def report(app_s, *files):
    res = {}
    for f in files:
        with open(f) as fh:
            r = json.load(fh)
        lat = sorted(r["lat"])
        pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        res[r["side"]] = {"all": r["all"], "answered": r["answered"], "p50": pct(0.5), "p95": pct(0.95), "max": lat[-1],
                          "app": float(app_s), "over50": pct(0.5) - float(app_s),
                          "over95": pct(0.95) - float(app_s), "load": r["load"]}
    sides = [s for s in ("berth", "jupyterhub") if s in res]
    head = {"berth": "berth", "jupyterhub": "JupyterHub"}
    rows = [("first request to all ready", "all"), ("start request answered, max", "answered"), ("request to ready, p50", "p50"),
            ("request to ready, p95", "p95"), ("request to ready, max", "max"),
            ("the app alone (jupyter-lab, median of 3)", "app"),
            ("control-plane overhead, p50 - app alone", "over50"),
            ("control-plane overhead, p95 - app alone", "over95")]
    print(f"{'seconds':42}" + "".join(f"{head[s]:>12}" for s in sides)
          + (f"{'berth/JupyterHub':>18}" if len(sides) == 2 else ""))
    for label, k in rows:
        line = f"{label:42}" + "".join(f"{res[s][k]:12.2f}" for s in sides)
        if len(sides) == 2:
            b, j = res["berth"][k], res["jupyterhub"][k]
            line += f"{b / j:18.2f}" if j > 0 and b >= 0 else f"{'-':>18}"
        print(line)
    for s in sides:
        print(f"load average before / after the {head[s]} run: {res[s]['load'][0]} / {res[s]['load'][1]}")

def drive(side, addr, token, names, poll, out):
    host, port = addr.rsplit(":", 1)
    auth = f"token {token}" if side == "jupyterhub" else f"Bearer {token}"

    def call(method, path, expect=(200,)):
        c = http.client.HTTPConnection(host, int(port), timeout=60)
        c.request(method, path, headers={"authorization": auth, "content-type": "application/json"})
        r = c.getresponse(); data = r.read(); c.close()
        if r.status not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
        return json.loads(data) if data else None

    if side == "jupyterhub":
        def start(name):
            call("POST", f"/hub/api/users/{name}/server", expect=(201, 202))
        def observe():  # -> {name: "ready" | "absent" | "failed: why" | other}
            seen = {}
            for u in call("GET", "/hub/api/users?limit=200"):
                s = u.get("servers", {}).get("")
                seen[u["name"]] = "absent" if s is None else "ready" if s["ready"] else "pending"
            return seen
    else:
        def start(wid):
            call("POST", f"/api/v1/workspaces/{wid}/start", expect=(200, 202))
        def observe():
            page = call("GET", "/api/v1/workspaces?limit=500")
            return {w["id"]: "ready" if w["state"] == "running"
                    else f"failed: {w['message']}" if w["state"] == "failed" else w["state"]
                    for w in page["items"]}

    n = len(names)
    barrier = threading.Barrier(n)
    sent, answered, ready = {}, {}, {}

    def one(name):
        barrier.wait(timeout=60)
        sent[name] = time.monotonic()
        start(name)
        answered[name] = time.monotonic()

    deadline = time.monotonic() + 600
    with cf.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, x) for x in names]
        while len(ready) < n:
            seen = observe()
            now = time.monotonic()
            for x in names:
                state = seen.get(x, "absent")
                if x not in sent:
                    continue
                if state == "ready":
                    ready.setdefault(x, now)
                elif state.startswith("failed"):
                    sys.exit(f"{side}: {x} failed to start: {state}")
                elif state == "absent" and x in answered and now - answered[x] > 5:
                    sys.exit(f"{side}: {x} is gone 5 s after its start request (spawn failed?)")
            for f in futures:
                if f.done() and f.exception():
                    sys.exit(f"{side}: start request failed: {f.exception()}")
            if now > deadline:
                sys.exit(f"{side}: only {len(ready)} of {n} ready within 600 s")
            time.sleep(poll)
    first = min(sent.values())
    lat = [ready[x] - sent[x] for x in names]
    with open(out, "w") as fh:
        json.dump({"side": side, "all": max(ready.values()) - first, "lat": lat,
                   "answered": max(answered[x] - sent[x] for x in names)}, fh)
    print(f"{side}: all {n} ready {max(ready.values()) - first:.2f} s after the first request", file=sys.stderr)

if __name__ == "__main__":
    try:
        if sys.argv[1] == "report":
            report(*sys.argv[2:])
        else:
            side, addr, token, poll, out, *names = sys.argv[1:]
            drive(side, addr, token, names, float(poll), out)
    except KeyboardInterrupt:
        os._exit(130)  # at once: the start threads may still wait on their requests
PY

# run_driver SIDE ADDR TOKEN NAMES...: the driver, with the load average before and
# after in its result file.
run_driver() {
  local side=$1 before
  before=$(load)
  timeout --foreground 900 python3 "$bench_tmp/drive.py" "$side" "$2" "$3" "$poll" "$bench_tmp/$side.json" "${@:4}" ||
    return 1
  jq --arg b "$before" --arg a "$(load)" '.load = [$b, $a]' "$bench_tmp/$side.json" >"$bench_tmp/$side.tmp"
  mv "$bench_tmp/$side.tmp" "$bench_tmp/$side.json"
}

[[ $sides == *berth* ]] && build_berth

echo "load average: $(load); measuring jupyter-lab alone (3 starts)..." >&2
runs=()
for _ in 1 2 3; do
  t=$(app_alone_once) || exit 1
  runs+=("$t")
done
app_s=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
echo "jupyter-lab alone: $app_s s (median of 3)" >&2

# --- JupyterHub
if [[ $sides == *jupyterhub* ]]; then
  jh=$bench_tmp/jupyterhub
  mkdir -p "$jh/home"
  jh_port=$(free_port)
  hub_port=$(free_port)
  proxy_api_port=$(free_port)
  jh_token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  cat >"$jh/jupyterhub_config.py" <<EOF
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = $jh_port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = $hub_port
c.JupyterHub.db_url = "sqlite:///$jh/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "$jh/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "$jh/jupyterhub.pid"
c.ConfigurableHTTPProxy.command = ["$chp"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:$proxy_api_port"
c.ConfigurableHTTPProxy.pid_file = "$jh/proxy.pid"
c.ConfigurableHTTPProxy.auth_token = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = "$jh/home/{username}"
c.Spawner.cmd = ["$jupyter_env/bin/jupyterhub-singleuser"]
c.Spawner.args = $(if ((${#allow_root[@]})); then echo '["--allow-root"]'; else echo '[]'; fi)
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 600
c.Spawner.http_timeout = 600
c.JupyterHub.concurrent_spawn_limit = 0  # no limit
c.JupyterHub.active_server_limit = 0
# The start request answers at once (202) instead of waiting up to 10 s for the
# spawn, as berth's does.
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.JupyterHub.services = [{"name": "bench", "api_token": "$jh_token"}]
c.JupyterHub.load_roles = [
    {"name": "bench", "scopes": ["admin:users", "admin:servers", "list:users"], "services": ["bench"]}
]
EOF
  (cd "$jh" && in_cg env -i PATH="$jupyter_env/bin:$PATH" HOME="$jh" LANG=C.UTF-8 \
    "$jupyter_env/bin/jupyterhub" -f "$jh/jupyterhub_config.py") >"$jh/jupyterhub.log" 2>&1 &
  hub_pid=$!
  deadline=$((SECONDS + 120))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "authorization: token $jh_token" \
    "http://127.0.0.1:$jh_port/hub/api/user") == 200 ]]; do
    kill -0 "$hub_pid" 2>/dev/null || { tail -n 30 "$jh/jupyterhub.log" >&2; die "jupyterhub exited while starting"; }
    ((SECONDS < deadline)) || { tail -n 30 "$jh/jupyterhub.log" >&2; die "jupyterhub did not answer within 120 s"; }
    sleep 0.1
  done
  echo "jupyterhub (pid $hub_pid) listening on http://127.0.0.1:$jh_port" >&2
  users=()
  for ((i = 0; i < n; i++)); do users+=("$(printf 'u%03d' "$i")"); done
  curl -sS --fail-with-body --max-time 30 -X POST -H "authorization: token $jh_token" \
    -d "$(printf '%s\n' "${users[@]}" | jq -R . | jq -cs '{usernames: .}')" \
    "http://127.0.0.1:$jh_port/hub/api/users" >/dev/null || die "JupyterHub: creating $n users failed"
  echo "starting $n JupyterLab servers with JupyterHub..." >&2
  run_driver jupyterhub "127.0.0.1:$jh_port" "$jh_token" "${users[@]}" ||
    { tail -n 30 "$jh/jupyterhub.log" >&2; die "the JupyterHub run failed"; }
  hub_stop
fi

# --- berth
if [[ $sides == *berth* ]]; then
  start_berth_for_workspaces
  api_token
  api POST /api/v1/profiles -H "authorization: Bearer $token" -d '{"name": "bench-lab",
    "display_name": "Bench JupyterLab", "cpu": 1, "memory_bytes": 1073741824,
    "idle_timeout_secs": 0, "start_timeout_secs": 600, "app": {"kind": "jupyterlab"}}' >/dev/null
  ids=()
  for ((i = 0; i < n; i++)); do
    ws=$(api POST /api/v1/workspaces -H "authorization: Bearer $token" \
      -d "{\"name\": \"$(printf 'w%03d' "$i")\", \"profile\": \"bench-lab\"}") || exit 1
    ids+=("$(jq -r .id <<<"$ws")")
  done
  # Started from a settled state: the controller has seen every creation.
  deadline=$((SECONDS + 60))
  until [[ $(api GET "/api/v1/workspaces?limit=500" -H "authorization: Bearer $token" |
    jq '[.items[] | select(.observed_generation != .generation)] | length') == 0 ]]; do
    ((SECONDS < deadline)) || die "the controller did not observe the new workspaces within 60 s"
    sleep 0.1
  done
  echo "starting $n JupyterLab workspaces with berth..." >&2
  run_driver berth "$addr" "$token" "${ids[@]}" || die "the berth run failed"
  berth_delete_all || die "deleting the workspaces failed"
fi

printf '\nN=%s JupyterLab servers started at once on %s CPUs (readiness polled every %s s)\n' \
  "$n" "$(nproc)" "$poll"
files=()
for s in $sides; do files+=("$bench_tmp/$s.json"); done
python3 "$bench_tmp/drive.py" report "$app_s" "${files[@]}"

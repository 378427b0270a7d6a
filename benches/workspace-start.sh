#!/usr/bin/env bash
# The start and stop path, berth against a real JupyterHub 6.1.1, on this
# machine, one after the other in one run. Each side starts N servers of the
# same minimal app at once, waits until all are ready, then stops them all:
#
# - berth: `berth serve` (release build, SQLite) with the process runtime
#   (bubblewrap, cgroups, a network namespace each); N workspaces of a profile
#   whose app is `sh -c 'exec python3 -m http.server "$PORT"'` (CPU limit 0.25,
#   or CPU; 128 MiB) are created stopped, then started
#   (POST /api/v1/workspaces/{id}/start; ready = state `running`) and stopped
#   (POST /api/v1/workspaces/{id}/stop; done = state `stopped`), then deleted.
# - JupyterHub: the pinned jupyterhub of /opt/berth/jupyter behind
#   configurable-http-proxy, with SimpleLocalProcessSpawner (no isolation, no
#   CPU or memory limit) running the same app on the port the spawner picks; N
#   users are created, then their servers started
#   (POST /hub/api/users/{name}/server; ready = `servers[""].ready`) and stopped
#   (DELETE /hub/api/users/{name}/server; done = no server). No spawn or server
#   limit (concurrent_spawn_limit = 0, active_server_limit = 0), 600 s start and
#   HTTP timeouts, and by default the start and stop requests answer at once
#   (slow_spawn_timeout and slow_stop_timeout 0, as berth's do;
#   JH_SLOW_TIMEOUT=10 is JupyterHub's own default, where a request waits up to
#   10 s for its spawn or stop).
#
# Both sides are driven the same way: CONCURRENCY client threads send the N
# requests, and one list request every POLL seconds (GET /api/v1/workspaces,
# GET /hub/api/users, 500 a page) sees which are done. Prints a table with a
# column for each side and the ratio JupyterHub / berth (above 1: berth is
# faster, or smaller): the time until all start requests are answered and until
# all are ready, request to ready (p50 / p95 / max, as polled), the start
# requests' latency (p50 / p99), the same for the stops, the app's own start
# time measured outside both (the bare command on loopback until GET / answers;
# median of 5), the control-plane overhead per server (request to ready p50 by
# the server's own timestamps - berth's Ready condition, the time of JupyterHub's
# "took N seconds to start" log line, written before it adds the proxy route -
# minus the app alone), and the control plane's resident memory before and with
# N running (berth serve; JupyterHub with its proxy). At small N, berth's
# overhead includes its app's CPU throttling (the app alone and JupyterHub's
# servers have no limit): CPU=2 takes it out.
# Then the issue's goals, as text. Everything listens on 127.0.0.1 only, every
# wait is bounded, and whatever happens the traps delete the berth workspaces
# through the API, stop JupyterHub, kill every process it or the bare app
# started (they all run in a pids cgroup of this script's own) and remove the
# temporary directory.
#
# Run (as root):  N=10 benches/workspace-start.sh
#                 TARGETS=jupyterhub N=200 benches/workspace-start.sh
#                 N=200 CONCURRENCY=32 benches/workspace-start.sh
# Environment:    N                servers per side (default 10, at most 500)
#                 CONCURRENCY      client threads sending requests (default 16)
#                 TARGETS          both (default), berth or jupyterhub
#                 POLL             seconds between readiness polls (default 0.1)
#                 CPU              the berth profile's CPU limit (default 0.25)
#                 JH_SLOW_TIMEOUT  JupyterHub's slow_spawn/stop_timeout (default 0)
# Needs: what scripts/install-deps installs (cargo, jq, bubblewrap, the jupyter
# environment and configurable-http-proxy in /opt/berth/node). berth is built
# from the checkout this script is in, `cargo build --release -p berth`
# (an exported CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

n=${N:-10}
concurrency=${CONCURRENCY:-16}
targets=${TARGETS:-both}
poll=${POLL:-0.1}
jh_slow=${JH_SLOW_TIMEOUT:-0}
cpu=${CPU:-0.25}
jupyter_env=/opt/berth/jupyter
chp=/opt/berth/node/node_modules/.bin/configurable-http-proxy
if ! [[ $n =~ ^[1-9][0-9]{0,2}$ ]] || ((n > 500)); then
  die "N must be a number from 1 to 500 (the lists page by 500)"
fi
[[ $concurrency =~ ^[1-9][0-9]{0,2}$ ]] || die "CONCURRENCY must be a number from 1 to 999"
[[ $poll =~ ^[0-9]*\.?[0-9]+$ ]] || die "POLL must be a number of seconds"
[[ $jh_slow =~ ^[0-9]*\.?[0-9]+$ ]] || die "JH_SLOW_TIMEOUT must be a number of seconds"
[[ $cpu =~ ^[0-9]*\.?[0-9]+$ ]] || die "CPU must be a number of CPUs"
case $targets in
  both) sides="jupyterhub berth" ;;
  berth | jupyterhub) sides=$targets ;;
  *) die "TARGETS must be both, berth or jupyterhub" ;;
esac
[[ $(id -u) == 0 ]] || die "the process runtime (and the cgroup this script kills by) needs root"
if [[ $sides == *jupyterhub* ]]; then
  [[ -x $jupyter_env/bin/jupyterhub ]] || die "no jupyterhub at $jupyter_env: run scripts/install-deps"
  [[ -x $chp ]] || die "no configurable-http-proxy at $chp: run scripts/install-deps"
fi
# The app runs with the PATH berth's process runtime gives a workspace; the bare
# app and JupyterHub's servers get the same, so all three run the same python3.
app_path=/usr/local/bin:/usr/bin:/bin
python=$(PATH=$app_path command -v python3) || die "no python3 in $app_path"
# In a workspace the app listens on every address of its own network namespace,
# where berth's proxy reaches it; on the host (JupyterHub's servers, the app
# alone) it listens on loopback only.
# shellcheck disable=SC2016 # $PORT is the app's own
export BENCH_APP='exec python3 -m http.server "$PORT"'
# shellcheck disable=SC2016
export BENCH_APP_HOST='exec python3 -m http.server --bind 127.0.0.1 "$PORT"'
export BENCH_CPU=$cpu

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Every process of the JupyterHub side and of the bare app runs in one pids cgroup
# of this script's own: the spawner starts servers in their own sessions, so only
# the cgroup finds them all (it is outside berth's `berth` parent, which berth
# prunes). berth itself and its workspaces are not in it.
hub_cgroup workspace-start

# The driver: the app alone; one side's run (start all, wait, stop all, wait);
# the report.
cat >"$bench_tmp/drive.py" <<'PY'
import concurrent.futures as cf, http.client, json, math, os, re, socket, statistics, subprocess, sys, time, traceback
from datetime import datetime

APP, APP_HOST = os.environ["BENCH_APP"], os.environ["BENCH_APP_HOST"]

class Failure(Exception):
    pass

def pct(values, p):
    s = sorted(values)
    return s[max(0, math.ceil(p * len(s)) - 1)]

def app_alone(cg, app_path, runs):
    """The app's own start time: the same command on loopback until GET / answers < 500."""
    def once():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
        t0 = time.monotonic()
        proc = subprocess.Popen(["sh", "-c", APP_HOST], env={"PATH": app_path, "PORT": str(port)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=lambda: open(f"{cg}/cgroup.procs", "w").write(str(os.getpid())))
        try:
            while time.monotonic() - t0 < 60:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    c.request("GET", "/"); status = c.getresponse().status; c.close()
                    if status < 500:
                        return time.monotonic() - t0
                except OSError:
                    pass
                if proc.poll() is not None:
                    raise Failure("the app alone exited while starting")
                time.sleep(0.002)
            raise Failure("the app alone did not answer within 60 s")
        finally:
            proc.kill(); proc.wait()
    return statistics.median(once() for _ in range(runs))

def client(addr, auth):
    host, port = addr.rsplit(":", 1)
    def call(method, path, body=None, expect=(200,), accept="application/json"):
        c = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            c.request(method, path, body=None if body is None else json.dumps(body),
                      headers={"authorization": auth, "content-type": "application/json", "accept": accept})
            r = c.getresponse(); data = r.read()
        finally:
            c.close()
        if r.status not in expect:
            raise Failure(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
        return json.loads(data) if data else None
    return call

def rss_mib(pids):
    kib = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            kib += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return kib / 1024

def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def berth(addr, token, n, conc):
    call = client(addr, f"Bearer {token}")
    call("POST", "/api/v1/profiles", {"name": "bench", "display_name": "Bench", "cpu": float(os.environ["BENCH_CPU"]),
         "memory_bytes": 128 << 20, "start_timeout_secs": 600,
         "app": {"kind": "command", "argv": ["sh", "-c", APP]}}, expect=(201,))
    with cf.ThreadPoolExecutor(conc) as pool:
        ids = list(pool.map(lambda i: call("POST", "/api/v1/workspaces",
            {"name": f"w{i:04d}", "profile": "bench"}, expect=(201,))["id"], range(n)))

    def list_all():
        items, after = [], None
        while True:
            page = call("GET", "/api/v1/workspaces?limit=500" + (f"&after={after}" if after else ""))
            items += page["items"]
            after = page["next"]
            if not after:
                return items

    # Started from a settled state: the controller has seen every creation.
    deadline = time.monotonic() + 120
    while any(w["observed_generation"] != w["generation"] for w in list_all()):
        if time.monotonic() > deadline:
            raise Failure("the controller did not observe the new workspaces within 120 s")
        time.sleep(0.1)

    def observe():
        return {w["id"]: "ready" if w["state"] == "running"
                else f"failed: {w.get('message')}" if w["state"] == "failed" else w["state"]
                for w in list_all()}

    def server_ready(wall):  # request to the Ready condition, by berth's clock
        lat = []
        for w in list_all():
            at = next(c["at"] for c in w["conditions"] if c["kind"] == "Ready" and c["status"])
            lat.append(ts(at) - wall[w["id"]])
        return lat

    return {"names": ids, "observe": observe, "server_ready": server_ready, "stopped": "stopped",
            "start": lambda x: call("POST", f"/api/v1/workspaces/{x}/start", expect=(202,)),
            "stop": lambda x: call("POST", f"/api/v1/workspaces/{x}/stop", expect=(202,))}

def jupyterhub(addr, token, n, conc, log):
    call = client(addr, f"token {token}")
    users = [f"u{i:04d}" for i in range(n)]
    call("POST", "/hub/api/users", {"usernames": users}, expect=(201,))

    def observe():
        seen, offset = {}, 0
        while True:
            page = call("GET", f"/hub/api/users?offset={offset}&limit=500",
                        accept="application/jupyterhub-pagination+json")
            for u in page["items"]:
                s = u.get("servers", {}).get("")
                seen[u["name"]] = "absent" if s is None else "ready" if s["ready"] else f"pending {s['pending']}"
            nxt = page["_pagination"]["next"]
            if not nxt:
                return seen
            offset = nxt["offset"]

    def server_ready(wall):
        # Request to the hub's log line "User NAME took T seconds to start" (in
        # UTC, to the ms), written when the app answers, before the hub adds its
        # route to the proxy and calls it ready.
        at = {}
        with open(log, errors="replace") as f:
            for line in f:
                m = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*User (\S+) took [0-9.]+ seconds to start", line)
                if m:
                    at[m.group(2)] = datetime.strptime(m.group(1) + "+0000", "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
        missing = [u for u in users if u not in at]
        if missing:
            raise Failure(f"no 'took N seconds to start' log line for {missing[:5]}")
        return [at[u] - wall[u] for u in users]

    return {"names": users, "observe": observe, "server_ready": server_ready, "stopped": "absent",
            "start": lambda x: call("POST", f"/hub/api/users/{x}/server", expect=(201, 202)),
            "stop": lambda x: call("DELETE", f"/hub/api/users/{x}/server", expect=(202, 204))}

def phase(side, what, want, conc, poll, limit):
    """Sends side[what](x) for every name over conc threads while polling until all are `want`."""
    names, n = side["names"], len(side["names"])
    sent, wall, answered, done = {}, {}, {}, {}
    def one(x):
        wall[x] = time.time(); sent[x] = time.monotonic()
        side[what](x)
        answered[x] = time.monotonic()
    pool = cf.ThreadPoolExecutor(conc)
    t0 = time.monotonic()
    deadline = t0 + limit
    try:
        futures = [pool.submit(one, x) for x in names]
        while True:
            polled_at = time.monotonic()
            seen = side["observe"]()
            now = time.monotonic()
            for x in names:
                if x in done or x not in sent:
                    continue
                state = seen.get(x, "absent")
                if state == want:
                    done[x] = now
                elif state.startswith("failed"):
                    raise Failure(f"{x} failed: {state}")
                elif state == "absent" and x in answered and answered[x] < polled_at:
                    raise Failure(f"{x} has no server after its {what} request was answered (did it fail?)")
            for f in futures:
                if f.done() and f.exception():
                    raise f.exception()
            if len(done) == n:
                break
            if now > deadline:
                raise Failure(f"{what}: only {len(done)} of {n} {want} within {limit} s")
            time.sleep(poll)
        cf.wait(futures, timeout=max(1, deadline - time.monotonic()))
        for f in futures:
            if not f.done():
                raise Failure(f"{what}: a request was still unanswered {limit} s after the first")
            f.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {"answered": max(answered.values()) - t0, "all": max(done.values()) - t0,
            "lat": [done[x] - sent[x] for x in names],
            "req_ms": [(answered[x] - sent[x]) * 1000 for x in names], "wall": wall}

def drive(kind, addr, token, n, conc, poll, pids, out, log):
    side = berth(addr, token, n, conc) if kind == "berth" else jupyterhub(addr, token, n, conc, log)
    rss_before = rss_mib(pids)
    print(f"{kind}: starting {n}...", file=sys.stderr)
    start = phase(side, "start", "ready", conc, poll, 600)
    print(f"{kind}: all {n} ready {start['all']:.2f} s after the first start request", file=sys.stderr)
    rss_running = rss_mib(pids)
    server = side["server_ready"](start["wall"])
    stop = phase(side, "stop", side["stopped"], conc, poll, 300)
    print(f"{kind}: all {n} stopped {stop['all']:.2f} s after the first stop request", file=sys.stderr)
    with open(out, "w") as f:
        json.dump({"start_answered": start["answered"], "ready_all": start["all"],
                   "ready_p50": pct(start["lat"], 0.5), "ready_p95": pct(start["lat"], 0.95),
                   "ready_max": max(start["lat"]), "start_req_p50": pct(start["req_ms"], 0.5),
                   "start_req_p99": pct(start["req_ms"], 0.99), "server_p50": pct(server, 0.5),
                   "stop_answered": stop["answered"], "stopped_all": stop["all"],
                   "stop_req_p50": pct(stop["req_ms"], 0.5), "stop_req_p99": pct(stop["req_ms"], 0.99),
                   "rss_before": rss_before, "rss_running": rss_running}, f)

ROWS = [  # key, label, format; the ratio is JupyterHub / berth on every row
    ("start_answered", "start requests all answered, s", "{:.2f}"),
    ("ready_all", "all ready, from the first start request, s", "{:.2f}"),
    ("ready_p50", "request to ready p50 (as polled), s", "{:.2f}"),
    ("ready_p95", "request to ready p95 (as polled), s", "{:.2f}"),
    ("ready_max", "request to ready max (as polled), s", "{:.2f}"),
    ("start_req_p50", "start request latency p50, ms", "{:.1f}"),
    ("start_req_p99", "start request latency p99, ms", "{:.1f}"),
    ("stop_answered", "stop requests all answered, s", "{:.2f}"),
    ("stopped_all", "all stopped, from the first stop request, s", "{:.2f}"),
    ("stop_req_p50", "stop request latency p50, ms", "{:.1f}"),
    ("stop_req_p99", "stop request latency p99, ms", "{:.1f}"),
    ("app_ms", "the app alone, start to answering, ms", "{:.1f}"),
    ("server_p50_ms", "request to ready p50, server's timestamps, ms", "{:.1f}"),
    ("overhead_ms", "overhead per server (that - app alone), ms", "{:.1f}"),
    ("rss_before", "control plane RSS before the starts, MiB", "{:.1f}"),
    ("rss_running", "control plane RSS with N running, MiB", "{:.1f}"),
]

def report(app_s, *files):
    res = {}
    for path in files:
        side = os.path.basename(path).removesuffix(".json")
        with open(path) as f:
            r = json.load(f)
        r["app_ms"] = float(app_s) * 1000
        r["server_p50_ms"] = r["server_p50"] * 1000
        r["overhead_ms"] = r["server_p50_ms"] - r["app_ms"]
        res[side] = r
    sides = [s for s in ("berth", "jupyterhub") if s in res]
    head = {"berth": "berth", "jupyterhub": "JupyterHub"}
    both = len(sides) == 2
    print(f"{'measure':46}" + "".join(f"{head[s]:>12}" for s in sides) + (f"{'JupyterHub/berth':>18}" if both else ""))
    for key, label, fmt in ROWS:
        line = f"{label:46}" + "".join(f"{fmt.format(res[s][key]):>12}" for s in sides)
        if both:
            b, j = res["berth"][key], res["jupyterhub"][key]
            line += f"{j / b:18.2f}" if key != "app_ms" and b > 0 and j >= 0 else f"{'-':>18}"
        print(line)
    print("server's timestamps: berth's Ready condition; JupyterHub's log line 'User NAME took T seconds\n"
          "to start' (the app answers; the hub adds the proxy route after it). The app alone: the same\n"
          "command on the host, until GET / answers (median of 5); the same for both sides.")
    for s in res:  # in the order they ran
        print(f"load average before / after the {head[s]} run: {res[s]['load'][0]} / {res[s]['load'][1]}")

if __name__ == "__main__":
    try:
        if sys.argv[1] == "app":
            print(f"{app_alone(sys.argv[2], sys.argv[3], int(sys.argv[4])):.4f}")
        elif sys.argv[1] == "report":
            report(*sys.argv[2:])
        else:
            kind, addr, token, n, conc, poll, pids, out, log = sys.argv[1:]
            drive(kind, addr, token, int(n), int(conc), float(poll), pids.split(","), out, log)
    except KeyboardInterrupt:
        os._exit(130)  # at once: the request threads may still wait on their answers
    except Exception as e:
        if not isinstance(e, Failure):
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr, flush=True)
        os._exit(1)
PY

# run_driver SIDE ADDR TOKEN PIDS [LOG]: one side's run, with the load average
# before and after in its result file.
run_driver() {
  local side=$1 before
  before=$(load)
  timeout --foreground 1500 "$python" "$bench_tmp/drive.py" "$side" "$2" "$3" "$n" "$concurrency" "$poll" \
    "$4" "$bench_tmp/$side.json" "${5:-}" || return 1
  jq --arg b "$before" --arg a "$(load)" '.load = [$b, $a]' "$bench_tmp/$side.json" >"$bench_tmp/$side.tmp"
  mv "$bench_tmp/$side.tmp" "$bench_tmp/$side.json"
}

[[ $sides == *berth* ]] && build_berth

echo "load average: $(load); measuring the app alone (5 starts)..." >&2
app_s=$(timeout 300 "$python" "$bench_tmp/drive.py" app "$cg" "$app_path" 5) || die "measuring the app alone failed"
cg_kill
echo "the app alone: $app_s s (median of 5)" >&2

# --- JupyterHub
if [[ $sides == *jupyterhub* ]]; then
  jh=$bench_tmp/jupyterhub
  mkdir -p "$jh/home"
  jh_port=$(free_port)
  hub_port=$(free_port)
  proxy_api_port=$(free_port)
  jh_token=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
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
c.ConfigurableHTTPProxy.auth_token = "$("$python" -c 'import secrets; print(secrets.token_hex(32))')"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = "$jh/home/{username}"
# The same app as berth's workspaces, on the port the spawner picked.
c.Spawner.cmd = ["sh", "-c", $(jq -n 'env.BENCH_APP_HOST')]
c.Spawner.environment = {"PATH": "$app_path", "PORT": lambda spawner: str(spawner.port)}
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 600
c.Spawner.http_timeout = 600
c.JupyterHub.concurrent_spawn_limit = 0  # no limit
c.JupyterHub.active_server_limit = 0
c.JupyterHub.api_page_max_limit = 500  # one list request for all, as berth's
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": $jh_slow, "slow_stop_timeout": $jh_slow}
c.JupyterHub.services = [{"name": "bench", "api_token": "$jh_token"}]
c.JupyterHub.load_roles = [
    {"name": "bench", "scopes": ["admin:users", "admin:servers", "list:users"], "services": ["bench"]}
]
EOF
  (cd "$jh" && in_cg env -i PATH="$jupyter_env/bin:$app_path" HOME="$jh" LANG=C.UTF-8 TZ=UTC \
    "$jupyter_env/bin/jupyterhub" -f "$jh/jupyterhub_config.py") >"$jh/jupyterhub.log" 2>&1 &
  hub_pid=$!
  deadline=$((SECONDS + 120))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "authorization: token $jh_token" \
    "http://127.0.0.1:$jh_port/hub/api/user") == 200 ]]; do
    kill -0 "$hub_pid" 2>/dev/null || { tail -n 30 "$jh/jupyterhub.log" >&2; die "jupyterhub exited while starting"; }
    ((SECONDS < deadline)) || { tail -n 30 "$jh/jupyterhub.log" >&2; die "jupyterhub did not answer within 120 s"; }
    sleep 0.1
  done
  chp_pid=$(cat "$jh/proxy.pid") || die "no configurable-http-proxy pid file"
  kill -0 "$chp_pid" || die "no configurable-http-proxy running"
  echo "jupyterhub (pid $hub_pid, proxy pid $chp_pid) listening on http://127.0.0.1:$jh_port" >&2
  run_driver jupyterhub "127.0.0.1:$jh_port" "$jh_token" "$hub_pid,$chp_pid" "$jh/jupyterhub.log" ||
    { tail -n 30 "$jh/jupyterhub.log" >&2; die "the JupyterHub run failed"; }
  # Stopped means the spawner saw its process exit: nothing but the hub and its proxy is left.
  left=$(grep -cvx -e "$hub_pid" -e "$chp_pid" "$cg/cgroup.procs" || true)
  ((left == 0)) || die "$left processes left in JupyterHub's cgroup after all its servers stopped"
  hub_stop
fi

# --- berth
if [[ $sides == *berth* ]]; then
  start_berth_for_workspaces
  api_token
  run_driver berth "$addr" "$token" "$berth_pid" || die "the berth run failed"
  berth_delete_all || die "deleting the workspaces failed"
fi

printf '\nN=%s servers of %s started at once, then stopped; %s CPUs, %s client threads, polled every %s s\n' \
  "$n" "python3 -m http.server" "$(nproc)" "$concurrency" "$poll"
[[ $sides == *berth* ]] && printf 'berth %s: process runtime (bubblewrap, cgroups, a network namespace each), %s CPU, 128 MiB\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$cpu"
[[ $sides == *jupyterhub* ]] && printf 'JupyterHub %s: SimpleLocalProcessSpawner (no isolation, no limits), configurable-http-proxy, slow_spawn/stop_timeout %s\n' \
  "$("$jupyter_env/bin/jupyterhub" --version)" "$jh_slow"
files=()
for s in $sides; do files+=("$bench_tmp/$s.json"); done
"$python" "$bench_tmp/drive.py" report "$app_s" "${files[@]}"
cat <<'EOF'
goals (the issue): 200 light workspaces all ready < 4 s and all stopped < 2 s; 500 all ready
< 60 s; overhead <= 50 ms per workspace; start and stop requests answer in milliseconds.
EOF

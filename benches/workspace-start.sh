#!/usr/bin/env bash
# Measures the start path: N workspaces of a minimal app (`python3 -m http.server`)
# asked to start at once through the API, with berth's process runtime (bubblewrap,
# cgroups, a network namespace each). Prints the time until all are ready, the
# request-to-ready time per workspace, the same minus the app's own start time
# (measured outside berth, the bare command on loopback) as berth's per-workspace
# overhead, and berth serve's memory with N workspaces running. Everything is
# deleted again before the script ends.
#
# Run (as root):  N=10 benches/workspace-start.sh
#                 N=200 CONCURRENCY=32 benches/workspace-start.sh
# Needs: what scripts/install-deps installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

n=${N:-10}
[[ $n =~ ^[1-9][0-9]{0,2}$ ]] && ((n <= 500)) || die "N must be a number from 1 to 500 (deletion pages by 500)"
[[ $(id -u) == 0 ]] || die "the process runtime needs root"

build_berth
start_berth BERTH_RUNTIME=process BERTH_QUOTA__MAX_WORKSPACES=100000 \
  BERTH_QUOTA__MAX_CPU=100000 BERTH_QUOTA__MAX_MEMORY_BYTES=1099511627776
api_token

timeout 1200 python3 - "$addr" "$token" "$n" "${CONCURRENCY:-16}" "$berth_pid" <<'PY'
import concurrent.futures as cf, http.client, json, socket, statistics, subprocess, sys, time
from datetime import datetime

addr, token, n, conc, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
host, port = addr.rsplit(":", 1)
APP = ["sh", "-c", "exec python3 -m http.server \"$PORT\""]

def call(method, path, body=None, expect=(200,)):
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status not in expect:
        sys.exit(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
    return json.loads(data) if data else None

def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def bare_start():
    """The app's own start time: the bare command on loopback until it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.Popen(["python3", "-m", "http.server", str(p), "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                return time.monotonic() - t0
            except OSError:
                time.sleep(0.005)
    finally:
        proc.kill(); proc.wait()

def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

app_start = statistics.median(bare_start() for _ in range(5))
call("POST", "/api/v1/profiles", {"name": "bench", "display_name": "Bench", "cpu": 0.25,
     "memory_bytes": 128 << 20, "app": {"kind": "command", "argv": APP}}, expect=(201,))
rss_before = rss_mib()
def delete_all():
    """Workspaces outlive berth by design: delete them all, whatever happened."""
    left = [w["id"] for w in call("GET", "/api/v1/workspaces?limit=500")["items"]]
    with cf.ThreadPoolExecutor(conc) as pool:
        list(pool.map(lambda i: call("DELETE", f"/api/v1/workspaces/{i}", expect=(202, 404)), left))
    until = time.monotonic() + 300
    while call("GET", "/api/v1/workspaces?limit=1")["items"]:
        if time.monotonic() > until:
            sys.exit("workspaces were not all deleted in time")
        time.sleep(0.2)

t0 = time.monotonic()
try:
    with cf.ThreadPoolExecutor(conc) as pool:
        ids = list(pool.map(lambda i: call("POST", "/api/v1/workspaces",
            {"name": f"w{i:04d}", "profile": "bench", "start": True}, expect=(201,))["id"], range(n)))
except BaseException:
    delete_all()
    raise
created_in = time.monotonic() - t0
ready, failed = {}, []
deadline = time.monotonic() + 600
while len(ready) < n and time.monotonic() < deadline:
    after = None
    while True:
        q = "/api/v1/workspaces?limit=500" + (f"&after={after}" if after else "")
        page = call("GET", q)
        for w in page["items"]:
            if w["state"] == "running" and w["id"] not in ready:
                ready[w["id"]] = w
            elif w["state"] == "failed":
                failed.append(w)
        after = page["next"]
        if not after:
            break
    if failed:
        delete_all()
        sys.exit(f"a workspace failed: {failed[0]}")
    time.sleep(0.05)
all_ready = time.monotonic() - t0
if len(ready) < n:
    delete_all()
    sys.exit(f"only {len(ready)} of {n} became ready in 600 s")
rss_running = rss_mib()
lat = []
for w in ready.values():
    at = next(c["at"] for c in w["conditions"] if c["kind"] == "Ready" and c["status"])
    lat.append(ts(at) - ts(w["created"]))
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
overhead = statistics.median(lat) - app_start

delete_all()

print(f"\nN={n} workspaces of `python3 -m http.server`, process runtime, concurrency {conc}")
print(f"{'create requests answered':44} {created_in:8.2f} s")
print(f"{'time until all ready':44} {all_ready:8.2f} s")
print(f"{'request to ready, p50 / p95 / max':44} {pct(0.5):6.2f} / {pct(0.95):.2f} / {lat[-1]:.2f} s")
print(f"{'the app alone, start to answering (median)':44} {app_start:8.3f} s")
print(f"{'berth overhead per workspace (p50 - app)':44} {overhead:8.3f} s")
print(f"{'berth serve VmRSS before / with N running':44} {rss_before:6.1f} / {rss_running:.1f} MiB")
PY

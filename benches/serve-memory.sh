#!/usr/bin/env bash
# Measures the memory of `berth serve` (VmRSS from /proc/PID/status) with its
# default SQLite store: idle right after start, then after N workspaces have been
# created through the API (one token, one kept-alive connection) and listed page
# by page. Idle is measured before the first login, whose argon2 hash alone
# allocates about 19 MiB.
#
# Run:   benches/serve-memory.sh
#        N=50000 benches/serve-memory.sh
# Needs: cargo, curl, jq, python3 (scripts/install-deps installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

n=${N:-10000}
[[ $n =~ ^[1-9][0-9]{0,5}$ ]] || die "N must be a number from 1 to 999999"

kib() { awk -v f="$1" '$1 == f ":" { print $2 }' "/proc/$berth_pid/status"; }

build_berth
# The admin creates all N: no quota in the way (the default allows 10).
start_berth BERTH_QUOTA__MAX_WORKSPACES=1000000
sleep 2 # let start-up work settle
rss_idle=$(kib VmRSS)
api_token

# Seeds ws-00001.. and then lists them all; every request must succeed.
timeout 900 python3 - "$addr" "$token" "$n" <<'PY'
import http.client, json, sys, time, urllib.parse

addr, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=30)
headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

def call(method, path, body=None, expect=200):
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != expect:
        sys.exit(f"{method} {path}: HTTP {resp.status}: {data[:500]!r}")
    return data

start = time.monotonic()
for i in range(1, n + 1):
    call("POST", "/api/v1/workspaces", json.dumps({"name": f"ws-{i:05d}"}), expect=201)
    if i % 2000 == 0 or i == n:
        secs = time.monotonic() - start
        print(f"created {i} workspaces in {secs:.1f} s ({i / secs:.0f}/s)", file=sys.stderr)

start, listed, pages, after = time.monotonic(), 0, 0, None
while True:
    query = {"limit": 500} | ({"after": after} if after else {})
    page = json.loads(call("GET", "/api/v1/workspaces?" + urllib.parse.urlencode(query)))
    listed, pages, after = listed + len(page["items"]), pages + 1, page["next"]
    if not after:
        break
print(f"listed {listed} workspaces in {pages} pages in {time.monotonic() - start:.1f} s", file=sys.stderr)
if listed < n:
    sys.exit(f"listed {listed} workspaces, expected at least {n}")
PY
rss_loaded=$(kib VmRSS)
rss_peak=$(kib VmHWM)

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
printf '\nberth %s, SQLite store\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
printf '%-40s %10s\n' "berth serve" "VmRSS MiB"
printf '%-40s %10s\n' "idle after start" "$(mib "$rss_idle")"
printf '%-40s %10s\n' "with $n workspaces, after listing them" "$(mib "$rss_loaded")"
printf '%-40s %10s\n' "peak (VmHWM)" "$(mib "$rss_peak")"

#!/usr/bin/env bash
# Measures the throughput and latency of one authenticated API read:
# GET /api/v1/workspaces/{id} with an API token (token lookup, one store read,
# JSON) against `berth serve` with its default SQLite store, driven by wrk over
# loopback. wrk and berth share the machine; compare runs on the same machine.
#
# Run:   benches/api-get-workspace.sh
#        DURATION=30s THREADS=2 CONNECTIONS=32 benches/api-get-workspace.sh
# Needs: cargo, curl, jq, python3, wrk (scripts/install-deps installs them).
# Prints wrk's report, then requests/s and the p50 and p99 latency.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

duration=${DURATION:-10s}
threads=${THREADS:-2}
connections=${CONNECTIONS:-32}

build_berth
start_berth
api_token
id=$(api POST /api/v1/workspaces -H "authorization: Bearer $token" -d '{"name":"bench"}' | jq -r .id)
url="http://$addr/api/v1/workspaces/$id"
api GET "/api/v1/workspaces/$id" -H "authorization: Bearer $token" >/dev/null

echo "wrk -t$threads -c$connections -d$duration --latency $url" >&2
report=$(wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s --latency \
  -H "Authorization: Bearer $token" "$url")
printf '%s\n' "$report"
summary=$(wrk_parse <<<"$report") || die "could not parse wrk's report"
read -r rps p50 p99 non2xx errors <<<"$summary"
((non2xx == 0)) || die "$non2xx responses were not 2xx; these numbers are not valid"

printf '\nberth %s, %s CPUs, wrk -t%s -c%s -d%s\n' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" "$threads" "$connections" "$duration"
printf '%-34s %12s %10s %10s\n' benchmark requests/s "p50 ms" "p99 ms"
printf '%-34s %12.0f %10.3f %10.3f\n' "GET /api/v1/workspaces/{id}" "$rps" "$p50" "$p99"
((errors == 0)) || printf 'note: wrk counted %d socket errors\n' "$errors"

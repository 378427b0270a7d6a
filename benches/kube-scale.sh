#!/usr/bin/env bash
# The Kubernetes operator at scale, as the issue asks: "creates 5,000
# Workspaces against the real API server, with kwok or the test playing the
# nodes. It reports reconcile throughput, the time for 500 to reach running,
# and the operator's memory."
#
# `berth-bench kube-scale` (crates/bench-tools/src/kube_scale.rs) starts the
# envtest control plane of crates/runtime-kube (a real kube-apiserver and etcd
# on loopback, built by scripts/install-kube), a simulated node in it
# (envtest::Node::simulate, kwok's way: each Pod bound and reported running
# and ready at once, each claim bound, no process run) and the release
# `berth operator run` as a process of its own, then:
#
# 1. creates N Workspaces, all stopped (a PVC, a Service and a NetworkPolicy
#    each, no Pod), CONCURRENCY requests in flight, and follows them (one
#    watch) until each one's status has caught up with its spec and its home
#    is bound: the reconcile throughput is Workspaces caught up per second;
# 2. sets spec.state Running on START of them at once, as berth starts a
#    workspace, and times each until its status says Running;
# 3. sets them Stopped again at once and times each until it says Stopped.
#
# A phase that stops getting anywhere (less than 1 % more in 3 minutes) is
# given up: the table then says how far it got, and the script fails.
#
# It prints a table: creation time, reconcile throughput, reconciles and API
# requests per Workspace (the API server's /metrics, all clients), the time
# for START to reach Running and then Stopped (and each's p50 / p99 / max), CPU
# seconds of each process per phase, the resident memory (VmRSS, peak VmHWM)
# of the operator, kube-apiserver and etcd after each phase, the operator's
# open sockets, the objects made, and the operator's warnings and errors. Everything listens on 127.0.0.1 only, every wait is
# bounded (TIMEOUT per phase), and the program's children (the operator,
# kube-apiserver, etcd) die with it.
#
# Run:   CARGO_TARGET_DIR=/var/cache/berth-bench-target benches/kube-scale.sh
#        N=500 benches/kube-scale.sh          a quick run (50 started)
# Environment:  N            Workspaces created (default 5000)
#               START        of them started at once (default N/10: 500 of 5000)
#               CONCURRENCY  create and start requests in flight (default 32)
#               TIMEOUT      seconds each phase may take (default 1200)
# Needs: cargo and jq (scripts/install-deps), kube-apiserver and etcd in
# /var/cache/berth-kube/v1.37.2/bin or $BERTH_KUBE_BIN (scripts/install-kube),
# openssl and setpriv. berth and berth-bench are built from this checkout
# (`cargo build --release`; an exported CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh

n=${N:-5000}
[[ $n =~ ^[1-9][0-9]{0,4}$ ]] || die "N must be a number from 1 to 99999"
start=${START:-$((n / 10 > 0 ? n / 10 : 1))}
if ! [[ $start =~ ^[1-9][0-9]{0,4}$ ]] || ((start > n)); then
  die "START must be a number from 1 to N ($n)"
fi
concurrency=${CONCURRENCY:-32}
[[ $concurrency =~ ^[1-9][0-9]{0,3}$ ]] || die "CONCURRENCY must be a number from 1 to 9999"
timeout=${TIMEOUT:-1200}
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a number of seconds"

kube_version=1.37.2 # envtest::KUBE_VERSION, what scripts/install-kube builds
kube_bin=${BERTH_KUBE_BIN:-/var/cache/berth-kube/v$kube_version/bin}
for b in kube-apiserver etcd; do
  [[ -x $kube_bin/$b ]] || die "no $kube_bin/$b: run scripts/install-kube (or set BERTH_KUBE_BIN)"
done
for t in openssl setpriv jq; do
  command -v "$t" >/dev/null || die "no $t: run scripts/install-deps"
done

build_berth
echo "building berth-bench (cargo build --release -p bench-tools)..." >&2
cargo build --release -p bench-tools
tool="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/berth-bench"
[[ -x $tool ]] || die "no berth-bench at $tool"

cmd=("$tool" kube-scale --berth "$berth_bin" --workspaces "$n" --start "$start"
  --concurrency "$concurrency" --timeout-secs "$timeout")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
began=$SECONDS
status=0
"${cmd[@]}" >"$bench_tmp/table" || status=$?

printf '\nkube-scale: N=%s Workspaces, %s started at once; berth %s%s; kube-apiserver and etcd v%s\n' \
  "$n" "$start" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
  "$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (with uncommitted changes)')" "$kube_version"
printf '%s CPUs (load average before: %s), %s s in all; the simulated node and the watch run in berth-bench\n' \
  "$(nproc)" "$load_before" "$((SECONDS - began))"
cat "$bench_tmp/table"
printf '\ncommand: N=%s START=%s CONCURRENCY=%s TIMEOUT=%s benches/kube-scale.sh\n' "$n" "$start" "$concurrency" "$timeout"
printf 'which ran:'
printf ' %q' "${cmd[@]}"
printf '\n'
((status == 0)) || die "berth-bench kube-scale failed (exit $status); the table above is as far as it got"

#!/usr/bin/env bash
# The benchmark of issue 4: builds the release binaries, then runs conftool-bench, which starts
# its own throwaway etcd servers (loopback, temp dirs, stopped by PID), generates fleets, and
# prints conftool-sync and confctl timings next to a raw etcd-client floor measured in the same
# run. Arguments go to conftool-bench, e.g. `--sizes 1000 --runs 1` (smoke) or `--sizes 1m`;
# `stall` measures stalled members, `watch` the latency from a write to Store::watch's event,
# `lb` the load-balancer agent with a real HAProxy (1,000 servers in 20 pools by default),
# `thresholds` what the atomic depool threshold costs (range compare, writers at once, a rack).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --bins
exec target/release/conftool-bench "$@"

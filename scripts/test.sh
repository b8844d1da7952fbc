#!/usr/bin/env bash
# The whole test suite: unit tests, doctests and the integration tests, which start their own
# throwaway etcd members on loopback (free ports, temp dirs; stopped by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --workspace --locked "$@"

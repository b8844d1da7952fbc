#!/usr/bin/env bash
# The whole test suite: unit tests, doctests and the integration tests, which start their own
# throwaway etcd members on loopback (free ports, temp dirs; stopped by PID).
#
# Interrupted (Ctrl-C, SIGTERM), the signal is passed on to the test processes, which stop
# their etcd members and remove their files before exiting; a run killed outright leaves files
# that the next run sweeps (tests/support/src/cleanup.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# Tests emulate sudo where they mean to (tests/e2e/sudo*.rs). Run through sudo itself, the
# suite's own SUDO_* variables would make every tool it starts run "for another user".
unset SUDO_UID SUDO_GID SUDO_USER SUDO_COMMAND
set -m   # the tests run in a process group of their own, to be signalled as one
cargo test --workspace --locked "$@" &
tests=$!
forward() {
  kill -"$1" -- "-$tests" 2>/dev/null || true
  wait "$tests" 2>/dev/null || true
  exit "$2"
}
trap 'forward INT 130' INT
trap 'forward TERM 143' TERM
trap 'forward HUP 129' HUP
wait "$tests"
# The libraries' documentation builds without a broken link or a private one (other tools
# read it: it is part of what the libraries offer).
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet \
  -p conftool-model -p conftool-trust -p conftool-core -p conftool-migrate -p conftool-sync \
  -p conftool-lb -p conftool-maintd -p conftool-rebootmgr
echo "docs: the libraries' documentation builds without warnings"

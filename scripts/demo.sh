#!/usr/bin/env bash
# The main job end to end on a fresh machine: install what is needed, build, start a
# throwaway etcd on loopback, sync conf/ into it, then show and change pool state.
# Everything it starts is stopped (by PID) and removed when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

# Colour only on a terminal (and not with NO_COLOR).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m'; reset=$'\033[0m'; else bold=""; reset=""; fi

# Build, and find the binaries where cargo says it put them (CARGO_TARGET_DIR and
# build.target-dir are honoured that way).
bindir=""
while IFS= read -r exe; do
  case "$exe" in */confctl) bindir=${exe%/confctl} ;; esac
done < <(cargo build --locked --bins --message-format=json-render-diagnostics \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
if [ -z "$bindir" ] || [ ! -x "$bindir/confctl" ]; then
  echo "demo: cargo build did not report a confctl binary" >&2
  exit 1
fi
export PATH="$bindir:$PATH"

work=$(mktemp -d -t conftool-demo.XXXXXX)
etcd_pid=""
cleanup() {
  local status=$?
  if [ -n "$etcd_pid" ]; then
    kill -9 "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
client=$(free_port); peer=$(free_port)
ETCD=${CONFTOOL_TEST_ETCD:-/usr/bin/etcd}
"$ETCD" --name demo --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "demo=http://127.0.0.1:$peer" --logger zap --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
export CONFTOOL_ENDPOINTS="http://127.0.0.1:$client"

# Ready when a read answers (--check: 0 = in sync, 3 = changes pending).
ready=""
for _ in $(seq 100); do
  if ! kill -0 "$etcd_pid" 2>/dev/null; then
    echo "demo: etcd ($ETCD, pid $etcd_pid) exited before it served requests; its log:" >&2
    cat "$work/etcd.log" >&2
    exit 1
  fi
  code=0
  conftool-sync --directory conf --check --timeout 1s >/dev/null 2>"$work/probe.err" || code=$?
  if [ "$code" -eq 0 ] || [ "$code" -eq 3 ]; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "demo: etcd (pid $etcd_pid) did not answer a read at $CONFTOOL_ENDPOINTS within 10 s; last attempt:" >&2
  cat "$work/probe.err" >&2
  echo "demo: etcd's log:" >&2
  cat "$work/etcd.log" >&2
  exit 1
fi

# A command as a shell needs it to be typed: plain words as they are, others single-quoted.
quoted() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+="$a "
    else
      out+="'${a//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}
# Run a command, showing it first; `expect N` before it says which exit code it must give.
want=0
step() {
  printf '\n%s$ %s%s\n' "$bold" "$(quoted "$@")" "$reset"
  local code=0
  "$@" || code=$?
  if [ "$code" -ne "$want" ]; then
    echo "demo: expected exit $want, got $code" >&2
    exit 1
  fi
  [ "$want" -eq 0 ] || echo "(exit $code, as expected)"
  want=0
}
expect() { want=$1; }

echo "etcd (pid $etcd_pid) listening on $CONFTOOL_ENDPOINTS, data in $work"
step conftool-sync --directory conf --dry-run
step conftool-sync --directory conf
step conftool-sync --directory conf          # a no-op: nothing written, same revision
step confctl select 'dc=eqiad,cluster=appservers,name=mw10.*' get
step confctl select 'dc=eqiad,cluster=appservers,service=apache,name=mw1018' set/pooled=no:weight=5
step confctl depool --hostname mw1019
step conftool --datacenter eqiad --cluster cache_text --service varnish-fe "cp1052 pool=yes; cp1053 pool=yes:weight=20000"
step confctl select 'dc=eqiad,name=mw1018|mw1019|cp1052|cp1053' get
# A fleet-wide depool is refused: it would leave pools below their depool threshold.
expect 2; step confctl select 'name=.*' set/pooled=no --yes
step conftool-sync --directory conf          # dynamic state survives a re-sync
echo
echo "Demo done; the throwaway etcd is stopped and its data removed."

#!/usr/bin/env bash
# The main job end to end on a fresh machine: install what is needed, build, start a
# throwaway etcd on loopback, sync conf/ into it, then show and change pool state.
# Everything it starts is stopped (by PID) and removed when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --locked --bins -q
bin=target/debug

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

free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
client=$(free_port); peer=$(free_port)
ETCD=$(command -v etcd || echo /usr/bin/etcd)
"$ETCD" --name demo --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "demo=http://127.0.0.1:$peer" --logger zap --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
export CONFTOOL_ENDPOINTS="http://127.0.0.1:$client"
for _ in $(seq 100); do
  "$bin/conftool-sync" --directory conf --check --quiet --timeout 1s >/dev/null 2>&1 && break
  [ $? -eq 3 ] && break
  sleep 0.1
done

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "etcd (pid $etcd_pid) listening on $CONFTOOL_ENDPOINTS, data in $work"
step "$bin/conftool-sync" --directory conf --dry-run
step "$bin/conftool-sync" --directory conf
step "$bin/conftool-sync" --directory conf          # a no-op: nothing written, same revision
step "$bin/confctl" select 'dc=eqiad,cluster=appservers,name=mw10.*' get
step "$bin/confctl" select 'dc=eqiad,cluster=appservers,service=apache,name=mw1018' set/pooled=no:weight=5
step "$bin/confctl" depool --hostname mw1019
step "$bin/conftool" --datacenter eqiad --cluster cache_text --service varnish-fe "cp1052 pool=yes; cp1053 pool=yes:weight=20000"
step "$bin/confctl" select 'dc=eqiad,name=mw1018|mw1019|cp1052|cp1053' get
step "$bin/conftool-sync" --directory conf          # dynamic state survives a re-sync
echo
echo "Demo done; the throwaway etcd is stopped and its data removed."

#!/usr/bin/env bash
# The main job end to end on a fresh machine: install what is needed, build, start a
# throwaway etcd on loopback, sync conf/ into it, then show and change pool state; then
# the load-balancer agent applying a depool to a real HAProxy's traffic.
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
haproxy_pid=""
agent_pid=""
cleanup() {
  local status=$?
  local pid
  for pid in "$agent_pid" "$haproxy_pid" "$etcd_pid"; do
    if [ -n "$pid" ]; then
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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
# A rack, by the labels the data directory gives its hosts: one plan, checked against every
# pool's threshold, recorded as an operation that puts back exactly what it changed.
# (cache_text/varnish-fe has only 2 of its 4 nodes pooled: the whole rack would cross it.)
step confctl depool --label rack=B4 --dc eqiad --dry-run
expect 2; step confctl depool --label rack=B4 --dc eqiad
step confctl depool --label rack=B4 --dc eqiad --partial --reason 'demo: rack B4 switch upgrade'
step confctl operation list
op=$(confctl operation list --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
step confctl operation end "$op"
step confctl operation list

# The load-balancer agent: a real HAProxy in front of three HTTP "nodes" (here HAProxy's own
# `http-request return` answering with their name), pool state from etcd applied to it.
echo
echo "${bold}Load balancing: conftool-lb-agent applies pool state to a real HAProxy${reset}"
mkdir -p "$work/lb/data/eqiad"
cat >"$work/lb/data/services.yaml" <<'YAML'
web:
  http:
    port: 80
    default_values: {pooled: "yes", weight: 10}
YAML
cat >"$work/lb/data/eqiad/pools.yaml" <<'YAML'
web:
  mw1001: {services: [http]}
  mw1002: {services: [http]}
  mw1003: {services: [http]}
YAML
fe=$(free_port); status=$(free_port)
declare -A node_port
{
  printf 'global\n  stats socket %s mode 600 level admin\n' "$work/lb/admin.sock"
  printf 'defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n  retries 0\n'
  for n in mw1001 mw1002 mw1003; do
    node_port[$n]=$(free_port)
    printf 'listen %s\n  bind 127.0.0.1:%s\n  http-request return status 200 content-type text/plain string %s\n' \
      "$n" "${node_port[$n]}" "$n"
  done
  printf 'frontend fe\n  bind 127.0.0.1:%s\n  default_backend be_http\nbackend be_http\n  balance roundrobin\n' "$fe"
  for n in mw1001 mw1002 mw1003; do
    printf '  server %s 127.0.0.1:%s weight 1 disabled\n' "$n" "${node_port[$n]}"
  done
} >"$work/lb/haproxy.cfg"
/usr/sbin/haproxy -f "$work/lb/haproxy.cfg" -db >"$work/lb/haproxy.log" 2>&1 &
haproxy_pid=$!
cat >"$work/lb/agent.yaml" <<YAML
haproxy_socket: $work/lb/admin.sock
status_listen: 127.0.0.1:$status
recheck_interval: 1s
pools:
  - {dc: eqiad, cluster: web, service: http, backend: be_http}
YAML

# A GET (bash's /dev/tcp, HTTP/1.0): the body of a 200, else `(HTTP <status>)`.
http_get() { # host:port path
  local answer code
  # In braces: on a bare `exec`, `2>/dev/null` would silence this shell's stderr for good.
  { exec 3<>"/dev/tcp/${1%:*}/${1#*:}"; } 2>/dev/null || { echo "(no answer)"; return; }
  printf 'GET %s HTTP/1.0\r\nHost: demo\r\n\r\n' "$2" >&3
  answer=$(cat <&3)
  exec 3<&-
  code=$(printf '%s' "$answer" | head -n 1 | cut -d' ' -f2)
  if [ "$code" = 200 ]; then
    printf '%s\n' "$answer" | sed '1,/^\r$/d'
  else
    echo "(HTTP $code)"
  fi
}
# n requests through HAProxy, a new connection each: who answered, counted.
tally() {
  local i
  for i in $(seq "$1"); do http_get "127.0.0.1:$fe" /; done | sort | uniq -c
}
for _ in $(seq 100); do
  [ -S "$work/lb/admin.sock" ] && [ "$(http_get "127.0.0.1:$fe" /)" != "(no answer)" ] && break
  sleep 0.1
done
step conftool-sync --namespace /lbdemo --directory "$work/lb/data"
echo "HAProxy (pid $haproxy_pid) on 127.0.0.1:$fe: servers mw1001..mw1003 start in maintenance"
printf '\n%s$ conftool-lb-agent --namespace /lbdemo --agent-config %s &%s\n' "$bold" "$work/lb/agent.yaml" "$reset"
conftool-lb-agent --namespace /lbdemo --agent-config "$work/lb/agent.yaml" 2>"$work/lb/agent.log" &
agent_pid=$!
serving=""
for _ in $(seq 100); do
  if [ "$(tally 3 | grep -c ' mw100[123]$')" -eq 3 ]; then serving=1; break; fi
  sleep 0.1
done
cat "$work/lb/agent.log"
if [ -z "$serving" ]; then echo "demo: the three nodes do not all get traffic" >&2; exit 1; fi
echo "9 requests through HAProxy:"; tally 9
t0=$(date +%s%N)
step confctl --namespace /lbdemo depool --hostname mw1002
gone=""
for _ in $(seq 500); do
  if ! tally 3 | grep -q mw1002; then gone=1; break; fi
done
t1=$(date +%s%N)
if [ -z "$gone" ]; then
  echo "demo: mw1002 still gets requests; agent log:" >&2; cat "$work/lb/agent.log" >&2; exit 1
fi
echo "from the start of confctl depool to no new request reaching mw1002: $(( (t1 - t0) / 1000000 )) ms (with this script's slow bash HTTP client)"
echo "9 requests through HAProxy:"; tally 9
echo "The status API (PyBal's), from HAProxy's own view:"
printf '%s$ GET http://127.0.0.1:%s/pools/be_http%s\n' "$bold" "$status" "$reset"
http_get "127.0.0.1:$status" /pools/be_http
echo "Repooled with --verify: confctl asks the agent's status API (the configuration's"
echo "load_balancers) until HAProxy has mw1002 back in rotation, and only then returns:"
printf 'load_balancers:\n  eqiad/web/http: [http://127.0.0.1:%s/pools/be_http]\n' "$status" >"$work/lb/confctl.yaml"
cat "$work/lb/confctl.yaml"
step confctl --namespace /lbdemo --config "$work/lb/confctl.yaml" pool --hostname mw1002 --verify
echo "9 requests through HAProxy:"; tally 9
echo "The agent's log (one JSON object per line):"
tail -n 4 "$work/lb/agent.log"
echo
echo "Demo done; the throwaway etcd, HAProxy and agent are stopped and their data removed."

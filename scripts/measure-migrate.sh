#!/usr/bin/env bash
# How long conftool-migrate takes to copy N objects (default 100,000) from etcd v2 to v3: a
# one-off measurement for docs/switch-over.md, not a test. Starts a throwaway etcd 3.4 with
# v2 enabled on loopback (free ports, a temp dir, stopped by PID at the end), fills v2 with a
# Python-style fleet (PUT /v2/keys/..., 64 connections), then times a dry run, the copy
# (--apply, which includes the final verification) and a second, idempotent run.
#   scripts/measure-migrate.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --release --locked -p conftool-cli --bin conftool-migrate
bin=target/release/conftool-migrate

work=$(mktemp -d -t conftool-migrate.XXXXXX)
etcd_pid=""
cleanup() {
  if [ -n "$etcd_pid" ]; then kill -9 "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

read -r client peer < <(python3 -c '
import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1",0))
print(*[x.getsockname()[1] for x in s])')
url=http://127.0.0.1:$client
"${CONFTOOL_TEST_ETCD:-/usr/bin/etcd}" --name m --data-dir "$work/data" \
  --listen-client-urls "$url" --advertise-client-urls "$url" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "m=http://127.0.0.1:$peer" --enable-v2=true \
  --logger zap --log-level error 2>"$work/etcd.log" &
etcd_pid=$!
for _ in $(seq 100); do curl -sf "$url/version" >/dev/null && break; sleep 0.1; done

echo "filling v2 with $n objects..."
start=$(date +%s.%N)
python3 - "$client" "$n" <<'EOF'
import http.client, sys, threading, urllib.parse
port, n = int(sys.argv[1]), int(sys.argv[2])
clusters = ["appservers", "api", "jobrunner", "cache_text", "cache_upload"]
def value(i):
    pooled = "inactive" if i % 13 == 0 else "no" if i % 13 in (1, 2) else "yes"
    return '{"pooled": "%s", "weight": %d}' % (pooled, i % 31)
def key(i):
    dc = "eqiad" if i % 2 == 0 else "codfw"
    svc = "apache" if (i // 10) % 2 == 0 else "nginx"
    return "/conftool/v1/pools/%s/%s/%s/mw%06d.%s.wmnet" % (dc, clusters[(i // 2) % 5], svc, i, dc)
def work(lo, hi):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(lo, hi):
        body = urllib.parse.urlencode({"value": value(i)})
        c.request("PUT", "/v2/keys" + key(i), body, {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse(); r.read()
        assert r.status in (200, 201), r.status
per = (n + 63) // 64
ts = [threading.Thread(target=work, args=(lo, min(n, lo + per))) for lo in range(0, n, per)]
for t in ts: t.start()
for t in ts: t.join()
EOF
echo "filled in $(echo "$(date +%s.%N) - $start" | bc) s"

export CONFTOOL_ENDPOINTS=$url
run() {
  local s e
  s=$(date +%s.%N)
  "$bin" --from-v2 "$url" --namespace /conftool "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  e=$(date +%s.%N)
  printf '%-28s %6.2f s   %s\n' "$*" "$(echo "$e - $s" | bc)" "$(tail -1 "$work/err")"
}
run
run --apply
run --apply

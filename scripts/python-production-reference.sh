#!/usr/bin/env bash
# Record what the real Python conftool 6.1.0 does with the production-shaped fixture
# (tests/fixtures/production: etc/conftool/schema.yaml with its JSON Schema files, and the
# data directory scripts/production-fixture.sh generates) into tests/fixtures/production/
# reference/: its first sync, the live state a few days of operations leave in etcd v2 (the
# state a switch-over migrates), and what its confctl prints for every object type. Not run
# by CI; see tests/fixtures/production/README.md. Needs python3 (with venv), PyPI, curl, jq
# and etcd 3.4 (CONFTOOL_TEST_ETCD overrides /usr/bin/etcd), which it starts with the v2 API
# on free loopback ports and stops by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fx="$root/tests/fixtures/production"
out="$fx/reference"
ETCD=${CONFTOOL_TEST_ETCD:-/usr/bin/etcd}
PYTHON=${PYTHON:-python3}

work=$(mktemp -d -t conftool-pyprod.XXXXXX)
etcd_pid=""
cleanup() {
  local status=$?
  if [ -n "$etcd_pid" ]; then
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the Python tool, pinned as scripts/python-reference.sh pins it.
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  conftool==6.1.0 python-etcd==0.4.5 PyYAML==6.0.4 jsonschema==4.26.0 \
  jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 attrs==26.1.0 \
  urllib3==2.8.0 dnspython==2.9.2 typing_extensions==4.16.0

# --- a throwaway etcd with the v2 API on free loopback ports.
free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
client=$(free_port); peer=$(free_port)
while [ "$peer" = "$client" ]; do peer=$(free_port); done
"$ETCD" --name pyprod --data-dir "$work/etcd" --enable-v2=true \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "pyprod=http://127.0.0.1:$peer" --logger zap --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
url="http://127.0.0.1:$client"
for _ in $(seq 100); do
  curl -fsS "$url/v2/keys/" >/dev/null 2>&1 && break
  kill -0 "$etcd_pid" 2>/dev/null || { cat "$work/etcd.log" >&2; exit 1; }
  sleep 0.1
done

# --- the installation: /etc/conftool as the fixture has it, at $work/etc/conftool (the
# schema's base_path /etc/conftool/json-schema/ moved there, as the tests move it), and a
# configuration file of the Python tool's kind.
cp -r "$fx/etc" "$work/etc"
sed -i "s#/etc/conftool/#$work/etc/conftool/#g" "$work/etc/conftool/schema.yaml"
[ ! -e /etc/etcd/etcdrc ] || { echo "python-production-reference: /etc/etcd/etcdrc exists; it would be read" >&2; exit 1; }
export USER=pyref-nobody
unset SUDO_USER
export PYTHONHASHSEED=0 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONIOENCODING=utf-8
printf 'host: 127.0.0.1\nport: %s\nprotocol: http\n' "$client" >"$work/etc/conftool/etcdrc"
cat >"$work/etc/conftool/config.yaml" <<EOF
hosts:
  - $url
namespace: /conftool
api_version: v1
pools_path: pools
driver_options:
  etcd_config_file: $work/etc/conftool/etcdrc
EOF
CONFIG="$work/etc/conftool/config.yaml"
SCHEMA="$work/etc/conftool/schema.yaml"

rm -rf "$out"
mkdir -p "$out"

normalize() {
  sed -e "s#$work#<WORK>#g" -e "s#$fx#<FIXTURE>#g" \
    -e 's#^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] #<TIME> #'
}

# The whole v2 keyspace, leaves only, as sorted "<key> <value>" lines (value as stored).
dump() {
  curl -fsS "$url/v2/keys/?recursive=true" |
    jq -r 'def leaves: if .dir then (.nodes // [])[] | leaves else "\(.key) \(.value)" end; .node | leaves' |
    LC_ALL=C sort >"$1"
}

sync() {
  local rc=0
  (cd "$fx" && "$work/venv/bin/conftool-sync" --directory data --schema "$SCHEMA" --config "$CONFIG") \
    >"$work/o" 2>&1 || rc=$?
  # Kept: its log without the audit lines (this machine has no /dev/log) and without the
  # "Creating" lines (one per object, in no stable order: the keyspace files show them).
  { echo "# conftool-sync --directory data --schema SCHEMA --config CONFIG"
    normalize <"$work/o" | grep -v -e 'ConftoolAudit\[' -e '\] conftool::load: Creating ' || true
    echo "# \"Creating\" lines not kept: $(grep -c '\] conftool::load: Creating ' "$work/o" || true)"
    echo "# exit: $rc"; } >"$out/$1.txt"
}

# confctl, answering its question with y; its output is not kept (the keyspace is).
confctl() {
  (cd "$fx/session" && echo y | "$work/venv/bin/confctl" --config "$CONFIG" --schema "$SCHEMA" --quiet "$@") \
    >"$work/o" 2>&1 || { cat "$work/o" >&2; echo "python-production-reference: confctl $* failed" >&2; exit 1; }
}

put() { curl -fsS -X PUT "$url/v2/keys$1" --data-urlencode "value=$2" >/dev/null; }

dump "$out/before-sync.txt"
sync sync-1
dump "$out/after-sync.txt"

# --- a few days of operations: the live state a switch-over moves.
N=(--object-type node)
confctl "${N[@]}" select 'dc=eqiad' set/pooled=yes:weight=10
confctl "${N[@]}" select 'dc=codfw' set/pooled=yes:weight=10
confctl "${N[@]}" select 'dc=eqiad,cluster=cache_text' set/weight=100
confctl depool --hostname mw1305.eqiad.wmnet
confctl "${N[@]}" select 'name=mw1306.eqiad.wmnet,service=nginx' set/pooled=no
confctl decommission --hostname kubernetes2001.codfw.wmnet
confctl "${N[@]}" select 'dc=codfw,cluster=parsoid,name=parse2001.codfw.wmnet' set/weight=0
confctl --object-type discovery select 'dnsdisc=.*' set/pooled=true
confctl --object-type discovery select 'dnsdisc=swift-rw,name=codfw' set/pooled=false
confctl --object-type discovery select 'dnsdisc=appservers-ro' set/ttl=10:references=mw-ro,api-ro
confctl --object-type geodns select 'geo_resource=text-addr,name=esams' set/pooled=false:comment=maintenance
confctl --object-type geodns select 'geo_resource=upload-addr,name=drmrs' set/@geodns-meta.yaml
confctl --object-type mwconfig select 'scope=common,name=WMFMasterDatacenter' set/val=eqiad
confctl --object-type mwconfig select 'scope=eqiad,name=ReadOnly' set/@readonly.yaml
confctl --object-type mwconfig select 'scope=eqiad,name=dbctlSections' set/@sections.yaml
confctl --object-type mwconfig select 'scope=common,name=MaintenanceWindow' set/@window.yaml
confctl --object-type dbconfig-section select 'datacenter=eqiad,name=s1' set/@section-s1.yaml
confctl --object-type dbconfig-section select 'datacenter=codfw,name=s8' set/@section-s8.yaml
confctl --object-type dbconfig-instance select 'datacenter=eqiad,name=db1100' set/@instance-db1100.yaml
confctl --object-type dbconfig-instance select 'datacenter=eqiad,name=db1109:3311' set/@instance-db1109.yaml
confctl --object-type requestctl-action select 'cluster=cache-text,name=ratelimit-01' set/enabled=true:expression=pattern@ua/ua-01
# Keys beyond the schema, as other tools (requestctl) write them, in their own order.
put /conftool/v1/request-actions/cache-text/ratelimit-02 \
  '{"enabled": true, "expression": "pattern@url/url-02", "log_matching": false, "resp_status": 429, "do_throttle": true, "comment": "T123"}'
put /conftool/v1/request-patterns/ua/ua-01 '{"header": "User-Agent", "header_value": "^curl/", "method": "GET"}'
dump "$out/live-keyspace.txt"

# --- what the Python tool's confctl shows for every type (compared, sorted, after the copy).
for t in node discovery geodns mwconfig dbconfig-instance dbconfig-section requestctl-action requestctl-pattern; do
  (cd "$fx" && "$work/venv/bin/confctl" --config "$CONFIG" --schema "$SCHEMA" --object-type "$t" \
     select 'name=.*' get) >"$work/o" 2>"$work/e" || { cat "$work/e" >&2; exit 1; }
  LC_ALL=C sort "$work/o" >"$out/get-$t.txt"
done

# --- its second sync of the same data: nothing to do.
sync sync-2
dump "$out/after-sync-2.txt"
cmp -s "$out/live-keyspace.txt" "$out/after-sync-2.txt" ||
  { echo "python-production-reference: the second sync changed the keyspace" >&2; exit 1; }
rm "$out/after-sync-2.txt"

echo "python-production-reference: wrote $(ls "$out" | wc -l) files to ${out#"$root"/}"

#!/usr/bin/env bash
# Record reference keyspaces and confctl outputs made by the real Python conftool
# (Wikimedia's, from PyPI) into tests/fixtures/python/reference/. Not run by CI: it is how
# those fixtures were made (see tests/fixtures/python/README.md). Needs python3 (with venv),
# network access to PyPI, curl, and an etcd that speaks the v2 API (etcd 3.4 with
# --enable-v2=true; CONFTOOL_TEST_ETCD overrides /usr/bin/etcd).
#
# Everything runs in a temp dir (venv, etcd data, config); the etcd it starts is stopped
# by its PID when the script ends.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fx="$root/tests/fixtures/python"
out="$fx/reference"
ETCD=${CONFTOOL_TEST_ETCD:-/usr/bin/etcd}
PYTHON=${PYTHON:-python3}

work=$(mktemp -d -t conftool-pyref.XXXXXX)
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

# --- the Python tool, pinned (these are what `pip install conftool==6.1.0` resolved to).
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  conftool==6.1.0 python-etcd==0.4.5 PyYAML==6.0.4 jsonschema==4.26.0 \
  jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 attrs==26.1.0 \
  urllib3==2.8.0 dnspython==2.9.2 typing_extensions==4.16.0
venv_site=$("$work/venv/bin/python" -c 'import conftool, os; print(os.path.dirname(os.path.dirname(conftool.__file__)))')

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
"$ETCD" --name pyref --data-dir "$work/etcd" --enable-v2=true \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "pyref=http://127.0.0.1:$peer" --logger zap --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
url="http://127.0.0.1:$client"
for _ in $(seq 100); do
  curl -fsS "$url/v2/keys/" >/dev/null 2>&1 && break
  kill -0 "$etcd_pid" 2>/dev/null || { cat "$work/etcd.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$url/v2/keys/" >/dev/null

# --- configuration for the Python tool. USER is set to a name with no home directory, so
# the driver reads neither /root/.etcdrc nor anyone's: only $work/etcdrc (and
# /etc/etcd/etcdrc, which must not exist). It is also the audit log's actor.
[ ! -e /etc/etcd/etcdrc ] || { echo "python-reference: /etc/etcd/etcdrc exists; it would be read" >&2; exit 1; }
export USER=pyref-nobody
unset SUDO_USER
export PYTHONHASHSEED=0 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONIOENCODING=utf-8
export EDITOR=false  # the "edit" action must not open an editor: it gets a failing one
printf 'host: 127.0.0.1\nport: %s\nprotocol: http\n' "$client" >"$work/etcdrc"
cat >"$work/config.yaml" <<EOF
hosts:
  - $url
namespace: /conftool
api_version: v1
pools_path: pools
driver_options:
  etcd_config_file: $work/etcdrc
  suppress_san_warnings: false
EOF
CONFIG="$work/config.yaml"
SCHEMA="$fx/schema.yaml"

rm -rf "$out"
mkdir -p "$out"

# Output made stable: temp paths, times, PIDs and the host name are replaced.
normalize() {
  sed -e "s#$venv_site#<SITE-PACKAGES>#g" -e "s#$work#<WORK>#g" -e "s#$fx#<FIXTURES>#g" \
    -e 's#"@timestamp": "[^"]*"#"@timestamp": "<TIMESTAMP>"#g' \
    -e 's#"host.hostname": "[^"]*"#"host.hostname": "<HOSTNAME>"#g' \
    -e 's#ConftoolAudit\[[0-9]*\]#ConftoolAudit[<PID>]#g' \
    -e 's#^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] #<TIME> #'
}

# The whole v2 keyspace, leaves only, as sorted "<key> <value>" lines (value as stored).
dump() {
  curl -fsS "$url/v2/keys/?recursive=true&sorted=true" | "$work/venv/bin/python" -c '
import json, sys
def walk(n):
    if n.get("dir"):
        for c in n.get("nodes", []):
            yield from walk(c)
    else:
        yield n["key"], n["value"]
for k, v in sorted(walk(json.load(sys.stdin)["node"])):
    print(k, v)
' >"$1"
}

# Quote a command line for display: single quotes only where needed.
show() {
  local a s=""
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./=,:@%+-]+$ ]]; then s+=" $a"; else s+=" '${a//\'/\'\\\'\'}'"; fi
  done
  echo "${s# }"
}

# conftool-sync: $1 = data dir (relative to the fixtures dir), $2 = output name.
sync() {
  local rc=0
  (cd "$fx" && "$work/venv/bin/conftool-sync" --directory "$1" --schema schema.yaml \
     --config "$CONFIG") >"$work/o" 2>&1 || rc=$?
  { echo "# conftool-sync --directory $1 --schema schema.yaml --config CONFIG"
    normalize <"$work/o"; echo "# exit: $rc"; } >"$out/$2.txt"
}

# confctl: w=1 if it writes (then the keyspace is dumped after it), in=stdin text
# (printf %b escapes; empty: an empty stdin), then the arguments. Files are numbered NNN
# in the order they were run; a "put" (below) takes a number from the same sequence.
n=0
confctl() {
  local w=$1 in=$2 rc=0 nn; shift 2
  n=$((n + 1)); nn=$(printf '%03d' "$n")
  (cd "$fx" && printf '%b' "$in" | "$work/venv/bin/confctl" --config "$CONFIG" --schema schema.yaml "$@") \
    >"$work/o" 2>"$work/e" || rc=$?
  printf '%s %s\n' "$nn" "confctl $(show "$@")" >>"$out/INDEX.txt"
  { echo "# confctl --config CONFIG --schema schema.yaml $(show "$@")"
    [ -z "$in" ] || echo "# stdin: $in"
    echo "# stdout:"; normalize <"$work/o"
    # The y/N prompt ("confctl>") ends stdout without a newline: say so, then add one.
    if [ -s "$work/o" ] && [ -n "$(tail -c1 "$work/o")" ]; then echo; echo "# (no newline at end of stdout)"; fi
    echo "# stderr:"; normalize <"$work/e"
    echo "# exit: $rc"; } >"$out/confctl-$nn.txt"
  if [ "$w" = 1 ]; then dump "$out/after-confctl-$nn.txt"; fi
}

# A value written straight into etcd (v2 PUT), as another tool or an older version might
# have left it: shows how Python reads and rewrites what it did not write itself.
put() {
  local nn
  n=$((n + 1)); nn=$(printf '%03d' "$n")
  curl -fsS -X PUT "$url/v2/keys$1" --data-urlencode "value=$2" >/dev/null
  printf '%s etcd v2 PUT %s %s\n' "$nn" "$1" "$2" >>"$out/INDEX.txt"
  printf '# etcd v2 PUT %s %s\n' "$1" "$2" >"$out/put-$nn.txt"
  dump "$out/after-put-$nn.txt"
}

dump "$out/before-sync.txt"
sync data sync-1
dump "$out/after-sync.txt"

# --- node objects, select mode.
N=(--object-type node)
C1='dc=eqiad,cluster=cache_text,service=nginx,name=cp1001.eqiad.wmnet'
confctl 0 "" "${N[@]}" select 'name=cp1001.eqiad.wmnet' get
confctl 1 "" "${N[@]}" select "$C1" set/pooled=yes
confctl 1 "" "${N[@]}" select "$C1" set/weight=10:pooled=no
confctl 0 "" "${N[@]}" select "$C1" set/pooled=maybe
confctl 0 "" "${N[@]}" select "$C1" set/weight=heavy
confctl 1 "y\n" "${N[@]}" select 'dc=eqiad,cluster=cache_text,service=varnish-fe' set/pooled=yes
confctl 0 "n\n" "${N[@]}" select 'dc=eqiad,cluster=appservers' set/pooled=yes
confctl 0 "n\n" "${N[@]}" --yaml select 'dc=eqiad,cluster=appservers' set/weight=3
confctl 0 "" "${N[@]}" select 'dc=eqiad,cluster=appservers' set/weight=3
confctl 1 "" "${N[@]}" --host select 'name=cp1002.eqiad.wmnet' set/weight=7
confctl 0 "" "${N[@]}" select 'name=nosuch' get
confctl 0 "" "${N[@]}" select 'service=apache' get
confctl 0 "" "${N[@]}" select 'dc=eqiad,service=(apache|nginx),name=.*1001.*' get
confctl 0 "" "${N[@]}" select 'foo=bar' get
confctl 0 "" "${N[@]}" select 'name=[' get
confctl 1 "" "${N[@]}" select 'name=mw1001.eqiad.wmnet' set/pooled=yes
confctl 1 "" "${N[@]}" select 'name=mw1001.eqiad.wmnet' set/pooled=yes
confctl 0 "" "${N[@]}" select 'name=mw1001.eqiad.wmnet' get get
confctl 0 "" "${N[@]}" --yaml select 'name=mw1001.eqiad.wmnet' get
confctl 1 "" "${N[@]}" --quiet select 'name=mw1001.eqiad.wmnet' set/weight=2
confctl 1 "" "${N[@]}" --reason 'a reason' select 'name=mw1001.eqiad.wmnet' set/weight=3
# --- simple actions (pool/depool/drain/decommission)
confctl 1 "" depool --hostname mw1001.eqiad.wmnet
confctl 1 "" pool --hostname mw2001.codfw.wmnet --service nginx
confctl 1 "" drain --hostname mw2001.codfw.wmnet
confctl 1 "" decommission --hostname mw2002.codfw.wmnet
confctl 0 "" pool --hostname nosuch.wmnet
confctl 0 "" --object-type widget pool --hostname w1
# --- node objects, the old tags mode
T='dc=eqiad,cluster=cache_text,service=varnish-fe'
confctl 0 "" tags "$T" --action get all
confctl 0 "" --yaml tags "$T" --action get all
confctl 0 "" tags "$T" --action get cp1003.eqiad.wmnet
confctl 0 "" tags "$T" --action get nosuch.eqiad.wmnet
confctl 0 "" tags "$T" --action get 're:cp100[12].*'
confctl 1 "" tags "$T" --action set/pooled=no cp1003.eqiad.wmnet
confctl 0 "" tags "$T" --action set/weight=1 all
confctl 0 "" tags "$T" --action set/weight=1 're:cp.*'
confctl 0 "" tags 'dc=eqiad,cluster=cache_text' --action get all
confctl 0 "" tags 'dc=eqiad,cluster=cache_text,service' --action get all
confctl 0 "" tags "$T" --action get cp1001.eqiad.wmnet --action get cp1002.eqiad.wmnet
confctl 0 "" --tags "$T" --action get cp1001.eqiad.wmnet
confctl 1 "" tags "$T" --action delete cp1003.eqiad.wmnet
confctl 1 "" "${N[@]}" select 'dc=codfw,service=apache,name=mw2002.codfw.wmnet' delete

# --- widget: every field type from the command line
W=(--object-type widget)
W1='dc=eqiad,cluster=cache_text,name=w1'
confctl 0 "" "${W[@]}" select "$W1" get
confctl 1 "" "${W[@]}" select "$W1" set/label=hello
confctl 1 "" "${W[@]}" select "$W1" set/count=5:enabled=true:items=x,y,z:mode=b
confctl 1 "" "${W[@]}" select "$W1" 'set/label=with space :enabled=FALSE'
confctl 1 "" "${W[@]}" select "$W1" set/extra=hello
confctl 1 "" "${W[@]}" select 'dc=eqiad,cluster=appservers,name=w3' 'set/label=café "quoted" \\ ☃'
confctl 0 "" "${W[@]}" select 'dc=eqiad,cluster=appservers,name=w3' get
confctl 1 "" "${W[@]}" select "$W1" set/items=
confctl 0 "" "${W[@]}" select "$W1" get
confctl 0 "" "${W[@]}" select "$W1" set/count=abc
confctl 0 "" "${W[@]}" select "$W1" set/enabled=maybe
confctl 0 "" "${W[@]}" select "$W1" set/mode=d
confctl 0 "" "${W[@]}" select "$W1" set/meta=x
confctl 0 "" "${W[@]}" select "$W1" set/networks=10.1.0.0/16
confctl 0 "" "${W[@]}" select "$W1" set/label
confctl 0 "" "${W[@]}" select "$W1" set/label=a=b
confctl 0 "" "${W[@]}" select "$W1" set/nosuch=1
confctl 0 "" "${W[@]}" select "$W1" frobnicate
# --- widget: from YAML files (set/@file)
W2='dc=eqiad,cluster=cache_text,name=w2'
confctl 1 "" "${W[@]}" select "$W2" set/@set/widget-valid.yaml
confctl 0 "" "${W[@]}" select "$W2" get
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-dict-invalid.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-cidr-notlist.yaml
confctl 1 "" "${W[@]}" select "$W2" set/@set/widget-cidr-allbad.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-any-invalid.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-bool-invalid.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-enum-invalid.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-int-invalid.yaml
confctl 1 "" "${W[@]}" select "$W2" set/@set/widget-list-notlist.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/widget-unknown.yaml
confctl 1 "" "${W[@]}" select "$W2" set/@set/widget-coerce.yaml
confctl 1 "" "${W[@]}" select "$W2" set/@set/widget-int-float.yaml
confctl 0 "" "${W[@]}" select "$W2" set/@set/no-such-file.yaml
confctl 0 "" "${W[@]}" select "$W2" get
confctl 0 "" "${W[@]}" select 'name=w.*' get
confctl 1 "y\n" "${W[@]}" select 'dc=eqiad' set/mode=c
confctl 1 "" "${W[@]}" select 'name=w4' delete
confctl 0 "" "${W[@]}" select 'name=w4' get
confctl 0 "" "${W[@]}" tags 'dc=eqiad,cluster=cache_text' --action get all
confctl 0 "" "${W[@]}" tags 'dc=eqiad,cluster=cache_text' --action get w1

# --- site (no tags) and svc (one tag, dict/list defaults)
confctl 0 "" --object-type site select 'name=eqiad' get
confctl 1 "" --object-type site select 'name=eqiad' set/priority=1:description=primary
confctl 0 "" --object-type site select 'name=.*' get
confctl 0 "" --object-type site tags '' --action get all
confctl 0 "" --object-type svc select 'cluster=cache_text,name=nginx' get
confctl 1 "" --object-type svc select 'cluster=cache_text,name=nginx' set/datacenters=eqiad
confctl 1 "" --object-type svc select 'cluster=cache_text,name=nginx' set/@set/svc-dict.yaml

# --- mwconfig (json_schema): replicas-* violate the "replicas" rule from the sync on
M=(--object-type mwconfig)
confctl 0 "" "${M[@]}" select 'name=replicas-db1' get
confctl 1 "" "${M[@]}" select 'name=replicas-db1' set/@set/mwconfig-valid.yaml
confctl 0 "" "${M[@]}" select 'name=replicas-db1' set/@set/mwconfig-invalid.yaml
confctl 0 "" "${M[@]}" select 'name=replicas-db2' set/replicas=3
confctl 0 "" "${M[@]}" select 'name=replicas-db1' set/replicas=3
confctl 1 "" "${M[@]}" select 'name=ReadOnly' set/val=true
confctl 1 "" "${M[@]}" select 'name=ReadOnly' set/@set/mwconfig-extra.yaml
confctl 0 "" "${M[@]}" select 'name=ReadOnly' set/nosuch=1
confctl 0 "" "${M[@]}" select 'name=.*' get
confctl 0 "" upgrade-schema --dry-run mwconfig
confctl 0 "" upgrade-schema mwconfig

# --- freeform
F=(--object-type freeform)
confctl 0 "" "${F[@]}" select 'name=thing1' get
confctl 1 "" "${F[@]}" select 'name=thing1' set/owner=carol
put /conftool/v1/freeform/eqiad/thing2 '{"colour":"red","owner":"x","n":[1,2]}'
confctl 0 "" "${F[@]}" select 'name=thing2' get
confctl 1 "" "${F[@]}" select 'name=thing2' set/owner=alice
confctl 1 "" "${F[@]}" select 'name=thing2' set/colour=blue
confctl 1 "" "${F[@]}" select 'name=thing1' set/owner=alice:colour=blue
confctl 1 "" "${F[@]}" select 'name=thing1' set/@set/freeform.yaml
confctl 0 "" "${F[@]}" select 'name=thing1' get

# --- values Python did not write: wrong types, unknown and missing keys, other formatting
put /conftool/v1/widgets/eqiad/appservers/w3 '{"legacy":1,"count":"7","mode":"z","enabled":"yes","networks":["10.0.0.0/8","bogus"],"label":5}'
confctl 0 "" "${W[@]}" select 'name=w3' get
confctl 1 "" "${W[@]}" select 'name=w3' set/label=rewritten
put /conftool/v1/pools/eqiad/appservers/apache/mw1002.eqiad.wmnet '{"pooled":"yes"}'
confctl 0 "" "${N[@]}" select 'name=mw1002.eqiad.wmnet' get
confctl 1 "" "${N[@]}" select 'name=mw1002.eqiad.wmnet' set/weight=4
put /conftool/v1/pools/eqiad/appservers/apache/mw1002.eqiad.wmnet 'not json'
confctl 0 "" "${N[@]}" select 'name=mw1002.eqiad.wmnet' get
confctl 0 "" "${N[@]}" select 'dc=eqiad,cluster=appservers,service=apache,name=mw1002.eqiad.wmnet' set/weight=4
confctl 0 "" "${N[@]}" tags 'dc=eqiad,cluster=appservers,service=apache' --action set/weight=4 mw1002.eqiad.wmnet
put /conftool/v1/pools/eqiad/appservers/apache/mw1002.eqiad.wmnet '{"weight":4,"pooled":"yes"}'

# --- misc
confctl 0 "" --object-type nosuch select 'name=x' get
confctl 0 "" --object-type widget select 'name=w1' edit

# --- a second sync after editing the data (see data-resync/)
dump "$out/before-resync.txt"
sync data-resync sync-2
dump "$out/after-resync.txt"
sync data-resync sync-3
dump "$out/after-resync-again.txt"

echo "python-reference: wrote $(ls "$out" | wc -l) files to ${out#"$root"/}"

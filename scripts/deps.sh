#!/usr/bin/env bash
# Install what building, testing and the demo need, when it is missing. Each prerequisite is
# checked by what is actually used, not by a command name alone:
#
#   Debian package     checked by                                   needed for
#   etcd-server        /usr/bin/etcd (or $CONFTOOL_TEST_ETCD) runs   the real etcd that tests and the demo start
#   protobuf-compiler  protoc runs                                   etcd-client compiles its .proto files at build time
#   libprotobuf-dev    protoc can import google/protobuf/descriptor.proto
#                                                                    the well-known .proto includes those files import
#                                                                    (protobuf-compiler only *recommends* it)
#   openssl            openssl runs                                  test certificates for the TLS tests
#   git                git runs                                      the --git-rev tests build repositories with it
#   haproxy            /usr/sbin/haproxy (or $CONFTOOL_TEST_HAPROXY) -v runs
#                                                                    the real load balancer the pool-state tests drive
#
# Packages are installed with --no-install-recommends, so every one that is needed is named.
# Set CONFTOOL_DEPS_DRY_RUN=1 to only print what would be installed.
set -euo pipefail

missing=()
need() { missing+=("$1"); echo "deps: missing $1: $2" >&2; }

etcd_bin=${CONFTOOL_TEST_ETCD:-/usr/bin/etcd}
"$etcd_bin" --version >/dev/null 2>&1 || need etcd-server "$etcd_bin does not run"

# What etcd-client's build script does: run protoc on files that import the well-known types.
probe=$(mktemp -d -t conftool-deps.XXXXXX)
trap 'rm -rf "$probe"' EXIT
protoc_works() {
  printf 'syntax = "proto3";\nimport "google/protobuf/descriptor.proto";\nmessage M { google.protobuf.FileDescriptorProto f = 1; }\n' \
    >"$probe/probe.proto"
  protoc --proto_path="$probe" --descriptor_set_out="$probe/out.pb" "$probe/probe.proto" 2>"$probe/err"
}
if ! command -v protoc >/dev/null 2>&1; then
  need protobuf-compiler "no protoc on PATH"
  need libprotobuf-dev "google/protobuf/descriptor.proto (well-known .proto includes)"
elif ! protoc_works; then
  need libprotobuf-dev "protoc cannot import google/protobuf/descriptor.proto: $(head -c 200 "$probe/err")"
fi
command -v openssl >/dev/null 2>&1 || need openssl "no openssl on PATH"
command -v git >/dev/null 2>&1 || need git "no git on PATH"
haproxy_bin=${CONFTOOL_TEST_HAPROXY:-/usr/sbin/haproxy}
"$haproxy_bin" -v >/dev/null 2>&1 || need haproxy "$haproxy_bin -v does not run"

if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${CONFTOOL_DEPS_DRY_RUN:-}" ]; then
    echo "deps: would install: ${missing[*]}"
    exit 0
  fi
  echo "deps: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "deps: not root and no sudo: install ${missing[*]} (apt-get install ${missing[*]})" >&2
      exit 1
    }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  # Tests and the demo start their own etcd members (and haproxy instances) on free ports;
  # a service a package may start (etcd on 2379, haproxy's packaged config) is not used.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Check again, by the same probes: a package that installed but does not provide what the
  # build reads is an error here, not a confusing failure in a build script later.
  "$etcd_bin" --version >/dev/null 2>&1 || { echo "deps: $etcd_bin still does not run" >&2; exit 1; }
  "$haproxy_bin" -v >/dev/null 2>&1 || { echo "deps: $haproxy_bin -v still does not run" >&2; exit 1; }
  protoc_works || {
    echo "deps: protoc still cannot import google/protobuf/descriptor.proto: $(cat "$probe/err")" >&2
    exit 1
  }
fi
command -v cargo >/dev/null 2>&1 || { echo "deps: cargo (Rust toolchain) is required" >&2; exit 1; }

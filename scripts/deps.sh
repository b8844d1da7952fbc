#!/usr/bin/env bash
# Install what building and testing need, if it is missing: Debian's etcd-server (the real
# etcd the tests start) and protobuf-compiler (etcd-client compiles .proto files at build time).
set -euo pipefail
missing=()
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # test certificates for the TLS tests
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The package's own etcd service is not wanted: tests and the demo start their own members.
command -v cargo >/dev/null 2>&1 || { echo "deps: cargo (Rust toolchain) is required" >&2; exit 1; }

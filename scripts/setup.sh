#!/usr/bin/env bash
# Installs what the build, tests, demo and bench need, and only what is missing.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt.sh

# clang/llvm build the BPF programs, bpftool writes vmlinux.h from the kernel's
# BTF, libbpf1 is loaded by the agent at run time, wrk drives the bench,
# h2load (nghttp2-client) drives its HTTP/2 and gRPC scenarios, curl (with
# HTTP/2) and openssl (test certificates) serve the end-to-end tests,
# binutils/llvm give the tests independent oracles (objdump, readelf, llvm-dwarfdump),
# gcc builds libotelctx (clang 14 lacks -mtls-dialect=gnu2), valgrind checks it for leaks,
# capsh (libcap2-bin) runs the agent with exactly the capabilities a mode needs,
# libssl-dev and pkg-config build the native-tls (OpenSSL) reqwest fixture.
APT_PACKAGES=(clang llvm libbpf1 libbpf-dev bpftool wrk nghttp2-client binutils make gcc valgrind curl ca-certificates unzip openssl libcap2-bin libssl-dev pkg-config)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v node >/dev/null || { echo "setup: Node.js 20.19+ is required" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  { echo "setup: Node.js 20.19+ is required (found $(node --version))" >&2; exit 1; }

# npm packages, from the lockfile; skipped when the lockfile has not changed.
stamp=node_modules/.package-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# The official OTLP .proto definitions, for the tests that decode what the
# agent sends (test/unit/otlp-conformance.test.ts): the opentelemetry-proto
# artifact on Maven Central carries the .proto files of a proto release.
OTLP_PROTO_VERSION=1.9.0-alpha
proto_dir=build/otlp-proto/$OTLP_PROTO_VERSION
if [[ ! -f $proto_dir/opentelemetry/proto/trace/v1/trace.proto ]]; then
  echo "setup: fetching opentelemetry-proto $OTLP_PROTO_VERSION from Maven Central"
  mkdir -p "$proto_dir"
  jar=$proto_dir.jar
  curl -fsSL --retry 3 -o "$jar" "https://repo1.maven.org/maven2/io/opentelemetry/proto/opentelemetry-proto/$OTLP_PROTO_VERSION/opentelemetry-proto-$OTLP_PROTO_VERSION.jar"
  unzip -q -o "$jar" 'opentelemetry/proto/*' -d "$proto_dir"
  rm -f "$jar"
fi

if ! command -v cargo >/dev/null; then
  [[ -x $HOME/.cargo/bin/cargo ]] || { echo "setup: Rust (cargo) is required to build the target apps" >&2; exit 1; }
fi

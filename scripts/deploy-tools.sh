#!/usr/bin/env bash
# Tools for the deployment tests and demos, installed only when missing and
# cached outside the repository ($OTEL_RUST_AGENT_CACHE, default
# ~/.cache/otel-rust-agent):
#   deploy-tools.sh helm        builds helm v3.22.0 from the Go module proxy; prints its path
#   deploy-tools.sh jaeger      builds jaeger v1.76.0 (cmd/jaeger) from the Go module proxy; prints its path
#   deploy-tools.sh otelcol     builds a minimal OpenTelemetry Collector v0.165.0 (scripts/otelcol: OTLP
#                               receiver, otlp_http and debug exporters) from the Go module proxy; prints its path
#   deploy-tools.sh container   installs podman, runc and debootstrap from Debian (apt)
#   deploy-tools.sh systemd     installs strace (the systemd unit's system-call test)
#   deploy-tools.sh chromium    installs Debian's chromium (for the Jaeger UI screenshot)
# Go builds take minutes the first time (jaeger: ~18 CPU-minutes, helm: ~6,
# otelcol: ~3 plus the module downloads);
# concurrent callers wait for one build (flock).
set -euo pipefail
source "$(dirname "$0")/apt.sh"

CACHE=${OTEL_RUST_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-agent}
HELM_VERSION=v3.22.0
JAEGER_VERSION=v1.76.0
OTELCOL_VERSION=v0.165.0
OTELCOL_SRC=$(cd "$(dirname "$0")" && pwd)/otelcol
export PATH=$PATH:/usr/local/go/bin

need_go() {
  command -v go >/dev/null || { echo "deploy-tools: Go is needed to build $1 (from the Go module proxy)" >&2; exit 1; }
}

apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || { echo "deploy-tools: missing Debian packages: ${missing[*]} (run as root to install them)" >&2; exit 1; }
  echo "deploy-tools: installing ${missing[*]}" >&2
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_locked() { # name out-binary build-function
  local name=$1 out=$2 fn=$3
  [[ -x $out ]] && { echo "$out"; return; }
  mkdir -p "$CACHE/tools"
  exec 9>"$CACHE/tools/.$name.lock"
  flock 9
  if [[ ! -x $out ]]; then
    need_go "$name"
    echo "deploy-tools: building $name from the Go module proxy (once; minutes)" >&2
    local t0=$SECONDS
    "$fn" "$out"
    echo "deploy-tools: $name built in $((SECONDS - t0)) s: $out" >&2
  fi
  flock -u 9
  echo "$out"
}

build_helm() {
  local dir
  dir=$(dirname "$1")
  mkdir -p "$dir"
  GOBIN=$dir GOFLAGS=-mod=mod go install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
}

# cmd/jaeger's module has replace directives, so `go install pkg@version`
# refuses it: it is built as a tool of a throwaway module instead.
build_jaeger() {
  local mod=$CACHE/build/jaeger-$JAEGER_VERSION
  mkdir -p "$mod" "$(dirname "$1")"
  (
    cd "$mod"
    [[ -f go.mod ]] || go mod init otel-rust-agent/jaeger-build >/dev/null 2>&1
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&2
    go build -trimpath -o "$1.tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2
    mv "$1.tmp" "$1"
  )
}

# The collector is our own main.go (scripts/otelcol) over core modules of one
# release, pinned with their checksums by its go.mod and go.sum. The cache
# path carries a hash of those files, so a changed component list rebuilds.
otelcol_path() {
  local sum
  sum=$(cat "$OTELCOL_SRC/main.go" "$OTELCOL_SRC/go.mod" "$OTELCOL_SRC/go.sum" | sha256sum | cut -c1-12)
  echo "$CACHE/tools/otelcol-$OTELCOL_VERSION-$sum/otelcol"
}

build_otelcol() {
  local mod
  mod=$CACHE/build/$(basename "$(dirname "$1")")
  mkdir -p "$mod" "$(dirname "$1")"
  cp "$OTELCOL_SRC/main.go" "$OTELCOL_SRC/go.mod" "$OTELCOL_SRC/go.sum" "$mod/"
  (
    cd "$mod"
    GOFLAGS=-mod=readonly go build -trimpath -o "$1.tmp" . >&2
    mv "$1.tmp" "$1"
  )
}

case ${1:-} in
  helm) build_locked helm "$CACHE/tools/helm-$HELM_VERSION/helm" build_helm ;;
  jaeger) build_locked jaeger "$CACHE/tools/jaeger-$JAEGER_VERSION/jaeger" build_jaeger ;;
  otelcol) build_locked otelcol "$(otelcol_path)" build_otelcol ;;
  container) apt_install podman runc debootstrap ;;
  systemd) apt_install strace ;;
  chromium) apt_install chromium fonts-dejavu-core ;;
  *) echo "usage: $0 helm|jaeger|otelcol|container|systemd|chromium" >&2; exit 2 ;;
esac

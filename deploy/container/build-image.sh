#!/usr/bin/env bash
# Builds the agent's container image, localhost/otel-rust-agent:<version>
# (and :latest), from what `make build` produced:
#   1. the Debian base image (base-image.sh; cached);
#   2. build/image/: the npm package's files plus production node_modules
#      (npm ci --omit=dev, from the npm cache when it has them);
#   3. podman build with deploy/container/Containerfile.
# Prints the image name.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(node -p 'require("./package.json").version')
IMAGE=${IMAGE:-localhost/otel-rust-agent:$version}

base=$(deploy/container/base-image.sh)

stage=build/image
rm -rf "$stage"
mkdir -p "$stage/build" "$stage/dist"
cp -r bin offsets package.json package-lock.json "$stage/"
cp -r build/bpf "$stage/build/bpf"
rm -f "$stage/build/bpf/vmlinux.h" "$stage/build/bpf/"*.tmp
cp -r dist/src "$stage/dist/src"
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
rm -f "$stage/package-lock.json"

podman build --quiet --build-arg BASE="$base" -f deploy/container/Containerfile -t "$IMAGE" -t localhost/otel-rust-agent:latest "$stage" >/dev/null
echo "$IMAGE"

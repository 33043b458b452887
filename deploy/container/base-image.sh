#!/usr/bin/env bash
# Makes the container base image without any image registry: a minimal Debian
# root file system made by debootstrap from Debian's package archive, imported
# into podman's local store as localhost/otel-rust-agent-base:<suite>.
#
# The root file system tarball is cached outside the repository
# ($OTEL_RUST_AGENT_CACHE, default ~/.cache/otel-rust-agent/images), keyed by
# the suite and the package list, so it is made once per machine.
#
# Debian 13 (trixie) because the agent needs Node.js >= 20.19 (trixie ships
# 20.19) and libbpf 1.x (1.5); bookworm's nodejs is 18.
set -euo pipefail

SUITE=${BASE_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=nodejs,libbpf1,ca-certificates
IMAGE=localhost/otel-rust-agent-base:$SUITE
CACHE=${OTEL_RUST_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-agent}/images
key=$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
tarball=$CACHE/base-$SUITE-$key.tar

[[ $(id -u) -eq 0 ]] || { echo "base-image: debootstrap and podman need root" >&2; exit 1; }
for tool in debootstrap podman; do
  command -v $tool >/dev/null || { echo "base-image: $tool is missing (scripts/setup.sh container installs it)" >&2; exit 1; }
done

if [[ ! -s $tarball ]]; then
  mkdir -p "$CACHE"
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "base-image: debootstrap $SUITE ($PACKAGES) from $MIRROR; this takes a few minutes, once" >&2
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; echo "base-image: debootstrap failed (log: $CACHE/debootstrap.log)" >&2; exit 1; }
  # What an image does not need: package caches, docs, man pages, locales.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

if ! podman image exists "$IMAGE" || [[ $(podman image inspect --format '{{index .Labels "base.key"}}' "$IMAGE" 2>/dev/null) != "$key" ]]; then
  podman import --quiet --change "LABEL base.key=$key" --change 'CMD ["/bin/bash"]' "$tarball" "$IMAGE" >/dev/null
fi
echo "$IMAGE"

#!/usr/bin/env bash
# Debian's rustc-web/cargo-web toolchains, unpacked into build/toolchains/ for
# the tests and the compatibility matrix: rustc 1.85 (bookworm) and 1.96
# (bookworm-security), beside rustup's toolchain. Nothing is installed system-wide:
# each .deb is fetched with `apt-get download` and unpacked with `dpkg -x`, and
# the shared libraries the toolchain needs and the system lacks come the same way.
#
#   scripts/toolchains.sh [1.85|1.96 ...]     default: both
#   scripts/toolchains.sh --env 1.85          prints the environment to build with it
#
# Cached: a toolchain whose stamp file exists is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/build/toolchains

declare -A DEB_VERSION=(
  [1.85]=1.85.0+dfsg3-1~deb12u3
  [1.96]=1.96.0+dfsg1-1~deb12u2
)
# libLLVM that librustc_driver links against.
declare -A LLVM_PKG=([1.85]=libllvm19 [1.96]=libllvm22)
# Shared libraries of cargo-web that a build machine may lack (cargo 1.85 links
# libhttp-parser and libpcre3; 1.96 links libgit2 1.5, which needs mbedtls).
declare -A CARGO_LIBS=(
  [1.85]="libhttp-parser2.9 libpcre3"
  [1.96]="libgit2-1.5 libhttp-parser2.9 libmbedtls14 libmbedcrypto7 libmbedx509-1"
)

dir_of() { echo "$ROOT/rust-$1"; }
# Unpacked libraries land in usr/lib/x86_64-linux-gnu or (older packages) lib/x86_64-linux-gnu.
libpath() { echo "$1/usr/lib/x86_64-linux-gnu:$1/lib/x86_64-linux-gnu"; }

env_of() {
  local d; d=$(dir_of "$1")
  echo "PATH=$d/usr/bin:$PATH"
  echo "LD_LIBRARY_PATH=$(libpath "$d")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "RUSTC=$d/usr/bin/rustc"
  echo "CARGO=$d/usr/bin/cargo"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

fetch() {
  local ver=$1 d deb pkgs=() p
  d=$(dir_of "$ver")
  [[ -f $d/.complete ]] && return 0
  deb=${DEB_VERSION[$ver]:-}
  [[ -n $deb ]] || { echo "toolchains: unknown toolchain $ver (known: ${!DEB_VERSION[*]})" >&2; exit 2; }
  echo "toolchains: fetching rustc $ver (Debian $deb) into $d"
  rm -rf "$d" "$d.debs" "$d.tmp"
  mkdir -p "$d.debs"
  pkgs=("rustc-web=$deb" "cargo-web=$deb" "libstd-rust-web-dev=$deb" "libstd-rust-web-$ver=$deb")
  installed "${LLVM_PKG[$ver]}" || pkgs+=("${LLVM_PKG[$ver]}")
  for p in ${CARGO_LIBS[$ver]}; do installed "$p" || pkgs+=("$p"); done
  # apt-get download writes into the current directory; it needs the package
  # lists, which a fresh machine may not have yet.
  if ! (cd "$d.debs" && apt-get download -q "${pkgs[@]}" >/dev/null 2>"$d.debs/err"); then
    apt-get update -qq
    (cd "$d.debs" && apt-get download -q "${pkgs[@]}" >/dev/null 2>"$d.debs/err") ||
      { echo "toolchains: apt-get download failed: $(grep -m1 '^E:' "$d.debs/err" || tail -1 "$d.debs/err")" >&2; exit 1; }
  fi
  mkdir -p "$d.tmp"
  for f in "$d.debs"/*.deb; do dpkg -x "$f" "$d.tmp"; done
  rm -rf "$d.debs"
  # libLLVM from a package lives in usr/lib/x86_64-linux-gnu and usr/lib/llvm-N/lib.
  local missing
  missing=$(LD_LIBRARY_PATH=$(libpath "$d.tmp") ldd "$d.tmp/usr/bin/rustc" "$d.tmp/usr/bin/cargo" \
    "$d.tmp"/usr/lib/x86_64-linux-gnu/librustc_driver-*.so 2>/dev/null | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
  if [[ -n $missing ]]; then
    echo "toolchains: rustc $ver still lacks shared libraries: $missing" >&2
    exit 1
  fi
  local got
  got=$(LD_LIBRARY_PATH=$(libpath "$d.tmp") "$d.tmp/usr/bin/rustc" --version)
  [[ $got == "rustc $ver."* ]] || { echo "toolchains: unpacked rustc says \"$got\", expected $ver" >&2; exit 1; }
  mv "$d.tmp" "$d"
  echo "$got" > "$d/.complete"
  echo "toolchains: $got ready"
}

if [[ ${1:-} == --env ]]; then
  [[ -n ${2:-} ]] || { echo "usage: $0 --env VERSION" >&2; exit 2; }
  fetch "$2" >&2
  env_of "$2"
  exit 0
fi
vers=("$@")
((${#vers[@]})) || vers=(1.85 1.96)
for v in "${vers[@]}"; do fetch "$v"; done

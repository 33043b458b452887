// Facts about a Rust binary that survive a plain `cargo build --release`
// (no debuginfo): the compiler version and the versions of the crates it was
// built from. The agent picks its probe definitions by crate version.

import { ElfFile, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS } from './elf';
import { isRustMangled } from './demangle';

export interface RustcVersion {
  version: string;   // "1.95.0" or "1.96.0-nightly"
  full: string;      // "rustc version 1.95.0 (59807616e 2026-04-14)"
}

const RUSTC_COMMENT = /^rustc version (\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)/;

export function rustcVersion(elf: ElfFile): RustcVersion | null {
  for (const c of elf.comment()) {
    const m = RUSTC_COMMENT.exec(c);
    if (m) return { version: m[1], full: c };
  }
  return null;
}

// Panic locations (`Location { file, line, col }`) embed the source path of every
// crate that can panic, e.g. `/root/.cargo/registry/src/index.crates.io-<hash>/hyper-1.12.0/src/…`.
// The directory is `<name>-<version>`: names may contain dashes but never dots,
// so the first `-<digit>.<digit>.<digit>` ends the name. Versions may carry
// pre-release (`-rc.1`) and build (`+wasi-snapshot-preview1`) parts.
// `src/` is optional so that `/cargo/registry/<index>/<name>-<version>/` paths match too.
const REGISTRY_PATH =
  /registry\/(?:src\/)?[^/\0]+\/([A-Za-z0-9_-]+?)-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)\//y;
// Longest `registry/<index>/<name>-<version>/` we look at from one `registry/` hit.
const MAX_PATH_WINDOW = 512;

/** Crate name -> sorted distinct versions, from registry source paths in read-only data. */
export function crateVersions(elf: ElfFile): Map<string, string[]> {
  const found = new Map<string, Set<string>>();
  for (const sh of elf.sections) {
    if (!(sh.flags & SHF_ALLOC) || sh.flags & SHF_EXECINSTR || sh.type === SHT_NOBITS) continue;
    const data = elf.sectionData(sh);
    // A native search for the literal finds candidates without decoding the
    // whole section (tens of MB in big binaries); the regex runs only there.
    for (let at = data.indexOf('registry/'); at >= 0; at = data.indexOf('registry/', at + 1)) {
      REGISTRY_PATH.lastIndex = 0;
      const m = REGISTRY_PATH.exec(data.toString('latin1', at, Math.min(at + MAX_PATH_WINDOW, data.length)));
      if (!m) continue;
      let versions = found.get(m[1]);
      if (!versions) found.set(m[1], (versions = new Set()));
      versions.add(m[2]);
    }
  }
  const out = new Map<string, string[]>();
  for (const name of [...found.keys()].sort()) out.set(name, [...found.get(name)!].sort(compareVersions));
  return out;
}

const VERSION = /^(\d+)\.(\d+)\.(\d+)(-[^+]+)?/;

// Semver order, simplified: numeric major.minor.patch, a pre-release before its
// release, then plain string order (only used to list versions deterministically).
function compareVersions(a: string, b: string): number {
  const va = VERSION.exec(a)!;
  const vb = VERSION.exec(b)!;
  for (let i = 1; i <= 3; i++) {
    const d = Number(va[i]) - Number(vb[i]);
    if (d !== 0) return d;
  }
  if (!va[4] !== !vb[4]) return va[4] ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const RUST_RUNTIME_SYMBOLS = new Set(['rust_panic', 'rust_begin_unwind', '__rust_alloc', '__rust_probestack']);

export function isRustBinary(elf: ElfFile): boolean {
  if (rustcVersion(elf)) return true;
  return elf.symbols().some((s) => RUST_RUNTIME_SYMBOLS.has(s.name) || isRustMangled(s.name));
}

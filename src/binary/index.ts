// Binary analysis: everything the agent learns from the target executable
// before attaching probes. Cheap facts are computed up front; the demangled
// symbol index (~4 µs per symbol) is built on first use.

import { ElfFile, SHN_UNDEF, STT_FUNC } from './elf';
import { demangle, isRustMangled, legacyHash } from './demangle';
import { crateVersions, isRustBinary, rustcVersion, RustcVersion } from './rust';
import { findReturnSites } from './returns';

export { BinaryError, ElfFile } from './elf';
export { demangle, isRustMangled, legacyHash } from './demangle';
export type { RustcVersion } from './rust';

export interface FunctionSymbol {
  mangled: string;
  /** Demangled without the legacy hash; the raw name for non-Rust symbols. */
  demangled: string;
  /** Legacy mangling hash (16 hex digits), null for v0 and non-Rust names. */
  hash: string | null;
  vaddr: number;
  size: number;
  fileOffset: number;
}

export interface CodeSite {
  vaddr: number;
  fileOffset: number;
}

export interface FunctionExits {
  rets: CodeSite[];
  tailJumps: CodeSite[];
  /** Present when the exits are not fully known (jump table or tail call through a pointer). */
  indirectJumps: CodeSite[];
}

export class BinaryInfo {
  readonly isRust: boolean;
  readonly rustc: RustcVersion | null;
  readonly crates: Map<string, string[]>;
  /** No .symtab and no Rust function symbols left: functions cannot be found by name. */
  readonly stripped: boolean;
  private functionList: FunctionSymbol[] | undefined;
  private byName: Map<string, FunctionSymbol[]> | undefined;

  constructor(readonly path: string, readonly elf: ElfFile) {
    this.isRust = isRustBinary(elf);
    this.rustc = rustcVersion(elf);
    this.crates = crateVersions(elf);
    this.stripped =
      !elf.hasSymtab() && !elf.symbols().some((s) => s.type === STT_FUNC && isRustMangled(s.name));
  }

  /**
   * Every defined, sized function symbol, demangled. A name appears once per
   * address (.symtab and .dynsym repeat exported ones), but one address can carry
   * several names: LLVM's function merging leaves aliases, and each stays findable.
   */
  functions(): FunctionSymbol[] {
    if (!this.functionList) this.buildIndex();
    return this.functionList!;
  }

  /** All instances of a function: a generic function has one symbol per instantiation. */
  functionsByName(demangled: string): FunctionSymbol[] {
    if (!this.byName) this.buildIndex();
    return this.byName!.get(demangled) ?? [];
  }

  /** Functions matching an exact demangled name or a predicate, one per address. */
  findFunctions(query: string | ((fn: FunctionSymbol) => boolean)): FunctionSymbol[] {
    if (typeof query === 'string') return this.functionsByName(query);
    return uniqueByAddress(this.functions().filter(query));
  }

  /** Exit sites of `fn`, as vaddrs and as the file offsets uprobes attach to. */
  returnSites(fn: FunctionSymbol): FunctionExits {
    const sites = findReturnSites(this.elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr);
    const at = (vaddr: number): CodeSite => ({ vaddr, fileOffset: fn.fileOffset + (vaddr - fn.vaddr) });
    return {
      rets: sites.rets.map(at),
      tailJumps: sites.tailJumps.map(at),
      indirectJumps: sites.indirectJumps.map(at),
    };
  }

  private buildIndex(): void {
    const list: FunctionSymbol[] = [];
    const byName = new Map<string, FunctionSymbol[]>();
    const seen = new Set<string>();
    for (const s of this.elf.symbols()) {
      if (s.type !== STT_FUNC || s.size === 0 || s.shndx === SHN_UNDEF) continue;
      const key = `${s.value}:${s.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const seg = this.elf.loadSegmentAt(s.value);
      if (!seg) continue; // not mapped from the file, so it cannot be probed
      const fn: FunctionSymbol = {
        mangled: s.name,
        demangled: demangle(s.name) ?? s.name,
        hash: legacyHash(s.name),
        vaddr: s.value,
        size: s.size,
        fileOffset: s.value - seg.vaddr + seg.offset,
      };
      list.push(fn);
      const same = byName.get(fn.demangled);
      if (!same) byName.set(fn.demangled, [fn]);
      else if (!same.some((f) => f.vaddr === fn.vaddr)) same.push(fn);
    }
    this.functionList = list;
    this.byName = byName;
  }
}

function uniqueByAddress(fns: FunctionSymbol[]): FunctionSymbol[] {
  const seen = new Set<number>();
  return fns.filter((f) => !seen.has(f.vaddr) && (seen.add(f.vaddr), true));
}

export function analyzeBinary(path: string): BinaryInfo {
  return new BinaryInfo(path, ElfFile.open(path));
}

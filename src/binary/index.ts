// Binary analysis: everything the agent learns from the target executable
// before attaching probes. Cheap facts are computed up front; the demangled
// symbol index (~4 µs per symbol) is built on first use.

import { ElfFile, PF_X, SHN_UNDEF, STT_FUNC } from './elf';
import { demangle, isRustMangled, legacyHash } from './demangle';
import { crateVersions, isRustBinary, rustcVersion, RustcVersion } from './rust';
import { findReturnSites } from './returns';
import { findSymbolSource, defaultSymbolOptions, type SymbolOptions, type SymbolSource } from './symbol-sources';
import { fdeRanges, type FdeRange } from './eh-frame';
import { dwarfStructs, type DwarfStruct } from './dwarf';

export { BinaryError, ElfFile } from './elf';
export { demangle, isRustMangled, legacyHash } from './demangle';
export type { RustcVersion } from './rust';
export type { SymbolOptions, SymbolSource } from './symbol-sources';

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
  /** The binary itself has no .symtab and no Rust function symbols. */
  readonly stripped: boolean;
  /** Where function names come from: the binary, a debug file, an unstripped build, or nowhere. */
  readonly symbolSource: SymbolSource;
  private functionList: FunctionSymbol[] | undefined;
  private byName: Map<string, FunctionSymbol[]> | undefined;
  private fdeList: FdeRange[] | undefined;

  /** `realPath`: where the binary lives (for debuglink lookups), when `path` is a /proc/self/fd path. */
  constructor(readonly path: string, readonly elf: ElfFile, symbols: SymbolOptions = defaultSymbolOptions(), realPath = path) {
    this.isRust = isRustBinary(elf);
    this.rustc = rustcVersion(elf);
    this.crates = crateVersions(elf);
    this.stripped =
      !elf.hasSymtab() && !elf.symbols().some((s) => s.type === STT_FUNC && isRustMangled(s.name));
    this.symbolSource = this.stripped
      ? findSymbolSource(elf, realPath, symbols)
      : { kind: 'own', path: realPath, detail: 'the binary\'s own .symtab', elf, tried: [] };
  }

  /** Function names are known (from the binary or from another file). */
  get hasSymbols(): boolean {
    return this.symbolSource.kind !== 'none';
  }

  private dwarfCache = new Map<string, DwarfStruct[]>();

  /** Where DWARF debuginfo is: the binary (debug = true) or its debug file; undefined if none. */
  dwarfSource(): ElfFile | undefined {
    for (const e of [this.symbolSource.elf, this.elf]) {
      const s = e?.sectionByName('.debug_info');
      if (e && s && s.type !== 8 /* NOBITS */ && s.size > 0) return e;
    }
    return undefined;
  }

  /** Layouts of the named structures from DWARF, one per distinct layout (empty without
   * debuginfo). Names not yet looked up are read in one walk of .debug_info. */
  dwarfStructs(qualified: string[]): Map<string, DwarfStruct[]> {
    const todo = qualified.filter((q) => !this.dwarfCache.has(q));
    if (todo.length) {
      const e = this.dwarfSource();
      const found = e ? dwarfStructs(e, new Set(todo)) : [];
      for (const q of todo) this.dwarfCache.set(q, found.filter((f) => f.name === q));
    }
    return new Map(qualified.map((q) => [q, this.dwarfCache.get(q)!]));
  }

  /** Function ranges from .eh_frame (the function entries a stripped binary keeps). */
  fdes(): FdeRange[] {
    if (!this.fdeList) this.fdeList = fdeRanges(this.elf);
    return this.fdeList;
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
    // Names may come from another file; addresses are checked against, and
    // file offsets computed from, the binary's own segments.
    const names = this.symbolSource.elf ?? this.elf;
    for (const s of names === this.elf ? this.elf.symbols() : [...names.symbols(), ...this.elf.symbols()]) {
      if (s.type !== STT_FUNC || s.size === 0 || s.shndx === SHN_UNDEF) continue;
      const key = `${s.value}:${s.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const seg = this.elf.loadSegmentAt(s.value);
      if (!seg || !(seg.flags & PF_X) || s.value + s.size > seg.vaddr + seg.filesz) continue; // not code mapped from the file: cannot be probed
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

export function analyzeBinary(path: string, symbols?: SymbolOptions, realPath?: string): BinaryInfo {
  return new BinaryInfo(path, ElfFile.open(path), symbols, realPath);
}

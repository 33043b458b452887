// Finding a probe's function: by name when the binary (or a debug file, or an
// unstripped build) has symbols; without symbols, by its code signature:
//   1. anchors: the panic locations (file, line, column) its code references,
//      learned from reference builds of the same crate version
//      (offsets/signatures.json, written by tools/gen-layouts.ts). They are
//      source facts, so they do not depend on the compiler or the profile;
//   2. the candidates: the .eh_frame functions whose code loads one of those
//      Location records (an FDE start is a real function entry);
//   3. the check: what the probe's program relies on must be visible in the
//      candidate's code (the argument register used as the expected pointer).
// Exactly one candidate must pass; otherwise nothing is attached and the
// reason says why. A probe is never put at a guessed address.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BinaryInfo, FunctionSymbol } from '../binary';
import { findPanicLocations, scanLeaRefs, confirmRefs, type PanicLocation } from '../binary/code-refs';
import { fdeAt, type FdeRange } from '../binary/eh-frame';
import { argWordLoads, findU16ArgCompare, findU16FieldCompare } from '../binary/patterns';
import { layoutDb, resolveLayout } from './layouts';
import type { ArgFieldSpec, FunctionCheck, ProbeModule, ProbeSpec } from './module';
import { repoRoot } from '../util/paths';

export interface SignatureEntry {
  crate: string;
  crateVersion: string;
  /** Demangled name (no hash) of the function. */
  symbol: string;
  /** Source file inside the crate, e.g. src/proto/h1/role.rs. */
  file: string;
  /** (line, column) of panic locations only this function references. */
  anchors: [number, number][];
  /** The reference builds they were read from. */
  from: string[];
}

let sigCache: SignatureEntry[] | undefined;
export function signatureDb(): SignatureEntry[] {
  if (!sigCache) {
    const file = path.join(repoRoot(), 'offsets', 'signatures.json');
    sigCache = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: SignatureEntry[] }).entries : [];
  }
  return sigCache;
}

export type FunctionsResult =
  | { ok: true; fns: FunctionSymbol[]; notes: string[] }
  | { ok: false; reason: string; fns: FunctionSymbol[] };

/** Per-binary caches: locations and references are found once for all probes. */
interface BinaryCache {
  locations: Map<string, PanicLocation[]>;
  refsByLocation: Map<number, number[]>; // Location vaddr -> confirmed referencing FDE starts
  identified: Map<string, FunctionsResult>;
}
const caches = new WeakMap<BinaryInfo, BinaryCache>();
function cacheOf(b: BinaryInfo): BinaryCache {
  let c = caches.get(b);
  if (!c) caches.set(b, (c = { locations: new Map(), refsByLocation: new Map(), identified: new Map() }));
  return c;
}

function locationsOf(binary: BinaryInfo, suffix: string): PanicLocation[] {
  const c = cacheOf(binary);
  let locs = c.locations.get(suffix);
  if (!locs) {
    locs = findPanicLocations(binary.elf, [suffix]);
    c.locations.set(suffix, locs);
    // References to them, confirmed by decoding the function each sits in.
    const refs = scanLeaRefs(binary.elf, new Set(locs.map((l) => l.vaddr)));
    const byFde = new Map<FdeRange, typeof refs>();
    for (const r of refs) {
      const f = fdeAt(binary.fdes(), r.at);
      if (!f) continue;
      let list = byFde.get(f);
      if (!list) byFde.set(f, (list = []));
      list.push(r);
    }
    for (const [f, rs] of byFde) {
      for (const r of confirmRefs(binary.elf, f.start, f.end, rs)) {
        const l = c.refsByLocation.get(r.target) ?? [];
        if (!l.includes(f.start)) l.push(f.start);
        c.refsByLocation.set(r.target, l);
      }
    }
  }
  return locs;
}

/** Does `fn`'s code show what the probe relies on? undefined = yes, else why not. */
export function checkFunction(binary: BinaryInfo, fn: FunctionSymbol, spec: ProbeSpec, check: FunctionCheck): string | undefined {
  let code: Buffer;
  try { code = binary.elf.readAtVaddr(fn.vaddr, fn.size); } catch (e) { return `code unreadable: ${(e as Error).message}`; }
  switch (check.kind) {
    case 'arg-words': {
      const layout = resolveLayout(check.layout, binary.rustc?.version);
      if (!layout) return `no known ${check.layout} layout`;
      const idx = { ptr: layout.ptrIdx, len: layout.lenIdx, cap: layout.capIdx };
      const loads = argWordLoads(code, fn.vaddr, check.register);
      const missing = check.fields.filter((f) => !loads.has(idx[f] * 8));
      return missing.length === 0 ? undefined
        : `its code does not load ${check.layout}.${missing.join('/')} from ${check.register.toLowerCase()} (loads at ${[...loads].join(', ') || 'none'})`;
    }
    case 'u16-chain': {
      const found = findU16FieldCompare(code, fn.vaddr, check.register, check.compareWith);
      return found.length ? undefined : `its code does not compare a u16 two loads behind ${check.register.toLowerCase()} with ${check.compareWith}`;
    }
    case 'arg-u16': {
      const found = findU16ArgCompare(code, fn.vaddr, check.register, check.compareWith);
      return found.length ? undefined : `its code does not compare a u16 behind ${check.register.toLowerCase()} with ${check.compareWith}`;
    }
  }
}

/**
 * The instances of `spec`'s function in `binary`. With symbols: by name
 * (filtered by the check when the spec asks). Without: by signature, one
 * unique checked match per crate version, or a reason.
 */
export function functionsFor(binary: BinaryInfo, module: ProbeModule, spec: ProbeSpec, crateVersions: string[]): FunctionsResult {
  if (binary.hasSymbols) {
    const named = binary.functionsByName(spec.symbol);
    if (!spec.identify?.filterNamed || named.length === 0) return { ok: true, fns: named, notes: [] };
    const kept: FunctionSymbol[] = [];
    const why: string[] = [];
    for (const fn of named) {
      const bad = checkFunction(binary, fn, spec, spec.identify.check);
      if (bad) why.push(`0x${fn.vaddr.toString(16)}: ${bad}`); else kept.push(fn);
    }
    if (kept.length === 0) return { ok: false, fns: [], reason: `no instance passes the check (${why.join('; ')})` };
    return { ok: true, fns: kept, notes: why.length ? [`${why.length} instance(s) left out: ${why.join('; ')}`] : [] };
  }
  const ident = spec.identify;
  const source = binary.symbolSource.detail;
  if (!ident) return { ok: false, fns: [], reason: `binary is stripped of its symbol table (${source}); this probe has no code signature` };
  const key = `${spec.symbol}\0${JSON.stringify(ident)}\0${spec.id}`;
  const c = cacheOf(binary);
  const cached = c.identified.get(key);
  if (cached) return cached;
  const r = identifyWithoutSymbols(binary, module, spec, crateVersions);
  c.identified.set(key, r);
  return r;
}

function identifyWithoutSymbols(binary: BinaryInfo, module: ProbeModule, spec: ProbeSpec, crateVersions: string[]): FunctionsResult {
  const ident = spec.identify!;
  const anchorsOf = ident.anchorsOf ?? spec.symbol;
  const crate = module.crate.crate;
  const stripped = `binary is stripped of its symbol table (${binary.symbolSource.detail})`;
  if (crateVersions.length === 0) return { ok: false, fns: [], reason: `${stripped}; the ${crate} version is unknown, so its code signatures cannot be chosen` };
  if (binary.fdes().length === 0) return { ok: false, fns: [], reason: `${stripped}; no .eh_frame function table either` };
  const fns: FunctionSymbol[] = [];
  const notes: string[] = [];
  for (const v of crateVersions) {
    const sig = signatureDb().find((e) => e.crate === crate && e.crateVersion === v && e.symbol === anchorsOf);
    if (!sig) return { ok: false, fns: [], reason: `${stripped}; no code signature of ${anchorsOf} for ${crate} ${v} in the offsets database` };
    const locs = locationsOf(binary, `${crate}-${v}/${sig.file}`);
    const anchorLocs = locs.filter((l) => sig.anchors.some(([line, col]) => l.line === line && l.col === col));
    const refs = cacheOf(binary).refsByLocation;
    const cands = new Map<number, string[]>(); // FDE start -> anchors it references
    for (const l of anchorLocs) {
      for (const start of refs.get(l.vaddr) ?? []) {
        const a = cands.get(start) ?? [];
        a.push(`${l.line}:${l.col}`);
        cands.set(start, a);
      }
    }
    if (cands.size === 0) {
      return { ok: false, fns: [], reason: `${stripped}; none of the ${sig.anchors.length} panic location(s) of ${anchorsOf} (${crate} ${v} ${sig.file}) is referenced by code` };
    }
    const passed: { fn: FunctionSymbol; anchors: string[] }[] = [];
    const failed: string[] = [];
    for (const [start, anchors] of cands) {
      const f = binary.fdes().find((x) => x.start === start)!;
      const seg = binary.elf.loadSegmentAt(start);
      if (!seg) continue;
      const fn: FunctionSymbol = {
        mangled: '', demangled: spec.symbol, hash: null, vaddr: f.start, size: f.end - f.start,
        fileOffset: f.start - seg.vaddr + seg.offset,
      };
      const bad = checkFunction(binary, fn, spec, ident.check);
      if (bad) failed.push(`0x${start.toString(16)} (${anchors.join(' ')}): ${bad}`);
      else passed.push({ fn, anchors });
    }
    // A generic function (filterNamed) has one instance per type it is used
    // with: every candidate that passes is one. Any other function must be unique.
    if (passed.length > 1 && ident.filterNamed) {
      fns.push(...passed.map((p) => p.fn));
      notes.push(`identified without symbols: ${passed.length} instances at ${passed.map((p) => `0x${p.fn.vaddr.toString(16)}`).join(', ')} (.eh_frame), ` +
        `each referencing ${crate} ${v} ${sig.file} ${[...new Set(passed.flatMap((p) => p.anchors))].join(', ')}; ${describeCheck(spec, ident.check)}`);
      continue;
    }
    if (passed.length !== 1) {
      const what = passed.length === 0 ? 'no candidate passes the check' : `${passed.length} candidates pass the check (${passed.map((p) => `0x${p.fn.vaddr.toString(16)}`).join(', ')}): ambiguous`;
      return { ok: false, fns: [], reason: `${stripped}; identifying ${spec.symbol} by ${anchorsOf}'s panic locations: ${what}${failed.length ? ` [${failed.join('; ')}]` : ''}` };
    }
    fns.push(passed[0].fn);
    notes.push(`identified without symbols: function at 0x${passed[0].fn.vaddr.toString(16)} (.eh_frame), references ${crate} ${v} ${sig.file} ` +
      `${passed[0].anchors.join(', ')}; ${describeCheck(spec, ident.check)}${failed.length ? `; rejected ${failed.join('; ')}` : ''}`);
  }
  return { ok: true, fns, notes };
}

function describeCheck(spec: ProbeSpec, check: FunctionCheck): string {
  switch (check.kind) {
    case 'arg-words': return `loads ${check.layout}.${check.fields.join('/')} from ${check.register.toLowerCase()}`;
    case 'u16-chain': return `compares a u16 two loads behind ${check.register.toLowerCase()} with ${check.compareWith}`;
    case 'arg-u16': return `compares a u16 behind ${check.register.toLowerCase()} with ${check.compareWith}`;
  }
}

export interface ResolvedArgField { offset: number; source: 'dwarf+code' | 'dwarf' | 'db+code' | 'db' | 'code'; detail: string }

/** A field's offset from the binary's own DWARF: a number, undefined (no
 * debuginfo, or the type is not described), or a conflict between copies. */
export function dwarfOffset(binary: BinaryInfo, dwarfName: string | undefined, field: string): number | undefined | { conflict: number[] } {
  if (!dwarfName || !binary.dwarfSource()) return undefined;
  const copies = binary.dwarfStructs([dwarfName]).get(dwarfName) ?? [];
  const offs = [...new Set(copies.map((c) => c.members[field]).filter((x): x is number => x !== undefined))];
  if (offs.length === 0) return undefined;
  return offs.length === 1 ? offs[0] : { conflict: offs };
}

/**
 * The offset of an argument's u16 field (ArgFieldSpec) in `fn`: the offsets
 * database for the crate version, confirmed by the code's own compare; the
 * code alone when the database has no entry and the code shows one offset.
 */
export function resolveArgField(binary: BinaryInfo, fn: FunctionSymbol, spec: ArgFieldSpec, crate: string, crateVersions: string[]):
  { ok: true; field: ResolvedArgField } | { ok: false; reason: string } {
  const rustc = binary.rustc?.version;
  let code: number[] = [];
  try {
    code = [...new Set(findU16ArgCompare(binary.elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr, spec.code.argRegister, spec.code.compareWith).map((x) => x.offset))];
  } catch { /* no cross-check */ }
  const dw = dwarfOffset(binary, spec.dwarf, spec.field);
  const dwarfFrom = binary.dwarfSource() === binary.elf ? 'the binary\'s own DWARF' : 'DWARF of its debug file';
  if (typeof dw === 'object') return { ok: false, reason: `${dwarfFrom} has ${dw.conflict.length} layouts of ${spec.dwarf}` };
  if (dw !== undefined) {
    if (code.includes(dw)) return { ok: true, field: { offset: dw, source: 'dwarf+code', detail: `${dwarfFrom}, confirmed by the code` } };
    if (code.length) return { ok: false, reason: `${dwarfFrom} (${dw}) and code (${code.join(', ')}) disagree` };
    return { ok: true, field: { offset: dw, source: 'dwarf', detail: dwarfFrom } };
  }
  const db = crateVersions.length === 1
    ? layoutDb().filter((e) => e.type === spec.type && e.crate === crate && e.crateVersion === crateVersions[0] && e.fields[spec.field] !== undefined)
      .sort((a, b) => (a.rustc === rustc ? -1 : b.rustc === rustc ? 1 : 0))[0]
    : undefined;
  if (db) {
    const off = db.fields[spec.field];
    if (code.includes(off)) return { ok: true, field: { offset: off, source: 'db+code', detail: `${crate} ${crateVersions[0]} (rustc ${db.rustc}), confirmed by the code` } };
    if (code.length) return { ok: false, reason: `offsets database (${off}) and code (${code.join(', ')}) disagree` };
    if (db.rustc === rustc) return { ok: true, field: { offset: off, source: 'db', detail: `${crate} ${crateVersions[0]}, rustc ${db.rustc}` } };
    return { ok: false, reason: `${spec.type}.${spec.field} known for rustc ${db.rustc} only, and not visible in the code` };
  }
  if (code.length === 1) return { ok: true, field: { offset: code[0], source: 'code', detail: `from the code (no database entry for ${crate} ${crateVersions.join(', ') || '?'})` } };
  return { ok: false, reason: code.length > 1 ? `the code shows several candidate offsets (${code.join(', ')})` : `no offset of ${spec.type}.${spec.field} known and none visible in the code` };
}

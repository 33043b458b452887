// Resolving a probe's field chain (see FieldChainSpec) for one function
// instance: offsets database first, the function's code as the cross-check,
// and the code alone when the database has no entry for this crate version.
// When the two disagree, or neither knows, the chain is not used: the probe is
// not ready and the module's layout-free fallback is attached instead.
import type { BinaryInfo, FunctionSymbol } from '../binary';
import { findU16FieldCompare } from '../binary/patterns';
import type { FieldChainSpec } from './module';
import { layoutDb, compareVersions } from './layouts';
import { dwarfOffset } from './identify';

export interface ResolvedChain {
  outerOffset: number;
  innerOffset: number;
  source: 'dwarf+code' | 'dwarf' | 'db+code' | 'db' | 'code';
  detail: string;
}

export type ChainResult = { ok: true; chain: ResolvedChain } | { ok: false; reason: string };

function dbOffsets(spec: FieldChainSpec, crate: string, version: string, rustc: string | undefined): { outer: number; inner: number; rustc: string } | undefined {
  const pick = (type: string, field: string) => {
    const es = layoutDb().filter((e) => e.type === type && e.crate === crate && e.crateVersion === version && e.fields[field] !== undefined);
    // Same rustc first; layouts of one crate version rarely differ between rustc releases.
    es.sort((a, b) => (a.rustc === rustc ? -1 : b.rustc === rustc ? 1 : compareVersions(b.rustc, a.rustc)));
    return es[0];
  };
  const o = pick(spec.outer.type, spec.outer.field);
  const i = pick(spec.inner.type, spec.inner.field);
  if (!o || !i || o.rustc !== i.rustc) return undefined;
  return { outer: o.fields[spec.outer.field], inner: i.fields[spec.inner.field], rustc: o.rustc };
}

export function resolveFieldChain(binary: BinaryInfo, fn: FunctionSymbol, spec: FieldChainSpec, crate: string, crateVersions: string[]): ChainResult {
  const rustc = binary.rustc?.version;
  // With several versions of the crate linked, the database cannot say which
  // one this symbol belongs to; the code still can.
  const db = crateVersions.length === 1 ? dbOffsets(spec, crate, crateVersions[0], rustc) : undefined;
  let code: { outerOffset: number; innerOffset: number }[] = [];
  try {
    code = findU16FieldCompare(binary.elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr, spec.code.argRegister, spec.code.compareWith);
  } catch { /* unreadable code: no cross-check */ }
  const fits = (o: number) => o % 8 === 0 && o / 8 < 6; // the word must be inside what the program copies (H1_MSG_WORDS)
  // The binary's own DWARF (debug = true, or its debug file) first: it
  // describes exactly this build.
  const dwOuter = dwarfOffset(binary, spec.outer.dwarf, spec.outer.field);
  const dwInner = dwarfOffset(binary, spec.inner.dwarf, spec.inner.field);
  if (typeof dwOuter === 'number' && typeof dwInner === 'number') {
    const from = binary.dwarfSource() === binary.elf ? 'the binary\'s own DWARF' : 'DWARF of its debug file';
    if (!fits(dwOuter)) return { ok: false, reason: `${spec.outer.type}.${spec.outer.field} at ${dwOuter} is outside the copied words` };
    if (code.some((c) => c.outerOffset === dwOuter && c.innerOffset === dwInner)) return { ok: true, chain: { outerOffset: dwOuter, innerOffset: dwInner, source: 'dwarf+code', detail: `${from}, confirmed by the code` } };
    if (code.length > 0) return { ok: false, reason: `${from} (${dwOuter}, ${dwInner}) and code (${code.map((c) => `${c.outerOffset}, ${c.innerOffset}`).join('; ')}) disagree` };
    return { ok: true, chain: { outerOffset: dwOuter, innerOffset: dwInner, source: 'dwarf', detail: from } };
  }
  if (typeof dwOuter === 'object' || typeof dwInner === 'object') return { ok: false, reason: 'the binary\'s DWARF has conflicting layouts of these types' };
  if (db) {
    if (!fits(db.outer)) return { ok: false, reason: `${spec.outer.type}.${spec.outer.field} at ${db.outer} is outside the copied words` };
    const agree = code.some((c) => c.outerOffset === db.outer && c.innerOffset === db.inner);
    if (agree) return { ok: true, chain: { outerOffset: db.outer, innerOffset: db.inner, source: 'db+code', detail: `${crate} ${crateVersions[0]} (rustc ${db.rustc}), confirmed by the code` } };
    if (code.length > 0) return { ok: false, reason: `offsets database (${db.outer}, ${db.inner}) and code (${code.map((c) => `${c.outerOffset}, ${c.innerOffset}`).join('; ')}) disagree` };
    if (db.rustc === rustc) return { ok: true, chain: { outerOffset: db.outer, innerOffset: db.inner, source: 'db', detail: `${crate} ${crateVersions[0]}, rustc ${db.rustc}` } };
    return { ok: false, reason: `offsets known for ${crate} ${crateVersions[0]} with rustc ${db.rustc} only, and not visible in the code` };
  }
  if (code.length === 1 && fits(code[0].outerOffset))
    return { ok: true, chain: { ...code[0], source: 'code', detail: `from the code (no database entry for ${crate} ${crateVersions.join(', ') || '?'})` } };
  return { ok: false, reason: code.length > 1 ? 'the code shows several candidate offsets' : `no offsets for ${crate} ${crateVersions.join(', ') || '(version unknown)'} and none visible in the code` };
}

/** Cookie bits of a field chain (bpf/include/events.h, COOKIE_CHAIN_*). */
export function chainCookieBits(c: ResolvedChain): bigint {
  return (BigInt(c.outerOffset / 8) << 16n) | (BigInt(c.innerOffset & 0xffff) << 24n);
}

// Where tokio keeps the id of the task being polled on a thread: the field
// `current_task_id` of its thread-local runtime context
//   tokio::runtime::context::CONTEXT  (a `thread_local!` with const init)
// whose storage is an STT_TLS symbol of the executable. Every BPF program
// that needs "which task am I in" reads it (bpf/include/common.h,
// current_task_id), so one task id is read, never probed, per event.
//
// The address is thread pointer + D + F:
//   D  the symbol's offset from the thread pointer: x86-64 variant II TLS of
//      the main executable puts its block just below the thread pointer, at
//      st_value - round_up(PT_TLS memsz, PT_TLS align) (local-exec; the
//      linker resolved it into the code as a constant);
//   F  the field's offset inside the storage: offsets database (DWARF of a
//      real build of this tokio version): Storage<Context>.val +
//      Context.current_task_id.
// The cross-check is tokio's own code: `context::set_current_task_id(id)`
// (or `TaskIdGuard::enter`, where it is inlined) stores its argument at
// fs:[D + F] (with thin LTO through a register holding D, at opt-level "z"
// through the address an outlined accessor returns: patterns.ts). Database and code must agree; with no database entry for this
// tokio version, a single store found in the code is used alone.
import type { BinaryInfo } from '../../binary';
import { STT_TLS } from '../../binary/elf';
import { findTlsArgStores, tlsGetterOffset } from '../../binary/patterns';
import { demangle } from '../../binary/demangle';
import type { BinaryContextResult } from '../../plan/module';
import { layoutField } from '../../plan/layouts';

export const CONTEXT_SYMBOL = /^tokio::runtime::context::CONTEXT::\{\{?constant(?:#0)?\}?\}::\{\{?closure(?:#0)?\}?\}::(?:__RUST_STD_INTERNAL_)?VAL$/;
export const STORAGE_TYPE = 'std::sys::thread_local::native::eager::Storage<tokio::runtime::context::Context>';
export const CONTEXT_TYPE = 'tokio::runtime::context::Context';
/** tokio feature flavors the database keys the context's layout by (tools/gen-layouts.ts). */
const FLAVORS = ['rt-multi-thread', 'rt'];
/** Functions that store their argument into CONTEXT.current_task_id. */
const STORERS = ['tokio::runtime::context::set_current_task_id', 'tokio::runtime::task::core::TaskIdGuard::enter'];
/** Also in the wider walk: the guard's drop stores the previous id (passed by value) back (fat LTO keeps it out of line). */
const WIDER_STORERS = [...STORERS, '<tokio::runtime::task::core::TaskIdGuard as core::ops::drop::Drop>::drop'];

function roundUp(n: number, a: number): number {
  return a > 1 ? Math.ceil(n / a) * a : n;
}

export function locateCurrentTaskId(binary: BinaryInfo, versions: string[]): BinaryContextResult {
  const elf = binary.elf;
  // Local-exec TLS offsets hold for the main executable only (a PIE has an interpreter).
  if (elf.header.type !== 2 && !(elf.header.type === 3 && elf.programHeaders.some((p) => p.type === 3 /* PT_INTERP */)))
    return { ok: false, reason: 'not a main executable (TLS of a shared library is not located)' };
  const tls = elf.tlsSegment();
  if (!tls) return { ok: false, reason: 'the executable has no TLS segment' };
  const syms = elf.symbols().filter((s) => s.type === STT_TLS && CONTEXT_SYMBOL.test(demangle(s.name) ?? ''));
  const values = [...new Set(syms.map((s) => s.value))];
  if (values.length === 0) return { ok: false, reason: "tokio's CONTEXT thread-local is not in the symbol table" };
  if (values.length > 1) return { ok: false, reason: `${values.length} tokio CONTEXT thread-locals (several tokio versions linked)` };
  const d = values[0] - roundUp(tls.memsz, tls.align);

  // The context's layout depends on tokio's features: one database entry per
  // flavor; the code says which one this build is.
  const rustc = binary.rustc?.version;
  const dbCands: { f: number; from: string }[] = [];
  if (versions.length === 1) {
    for (const flavor of FLAVORS) {
      const val = layoutField(`${STORAGE_TYPE} [${flavor}]`, 'val', 'tokio', versions[0], rustc);
      const id = layoutField(`${CONTEXT_TYPE} [${flavor}]`, 'current_task_id', 'tokio', versions[0], rustc);
      if (val && id) dbCands.push({ f: val.offset + id.offset, from: `${id.found.from}, ${flavor}` });
    }
  }
  const storesIn = (wider: boolean): Set<number> => {
    const code = new Set<number>();
    // wider: a call to a thread-local accessor (opt-level "z" outlines them)
    // gives the offset of the variable it returns, and the walk goes on past
    // early returns (thin LTO, "z"): see findTlsArgStores.
    let entries: Map<number, { vaddr: number; size: number }> | undefined;
    const callTlsOffset = (target: number): number | undefined => {
      entries ??= new Map(binary.functions().map((f) => [f.vaddr, f]));
      const fn = entries.get(target);
      if (!fn || fn.size > 256) return undefined;
      try { return tlsGetterOffset(elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr); } catch { return undefined; }
    };
    for (const name of wider ? WIDER_STORERS : STORERS) {
      for (const fn of binary.functionsByName(name)) {
        try {
          const found = wider
            ? findTlsArgStores(elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr, 'RDI', 200, callTlsOffset, true)
            : findTlsArgStores(elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr);
          for (const t of found) code.add(t);
        } catch { /* unreadable: no cross-check from this one */ }
      }
    }
    return code;
  };
  let code = storesIn(false);
  // The wider walk is approximate: used only when the plain one saw no store,
  // and only to confirm a database offset (never alone, below).
  const widened = code.size === 0 && dbCands.length > 0;
  if (widened) code = storesIn(true);
  const show = (n: number) => (n < 0 ? `-0x${(-n).toString(16)}` : `+0x${n.toString(16)}`);
  if (dbCands.length > 0) {
    const hit = dbCands.find((c) => code.has(d + c.f));
    const hits = dbCands.filter((c) => code.has(d + c.f));
    if (hit && hits.length === 1) return { ok: true, taskIdTlsOffset: d + hit.f, detail: `current task id at fs${show(d + hit.f)} (database: ${hit.from}; confirmed by tokio's code${widened ? ', through an accessor or a register base' : ''})` };
    const db = dbCands.map((c) => `fs${show(d + c.f)}`).join(' or ');
    if (hits.length > 1) return { ok: false, reason: `tokio's code confirms both database offsets (${db}): the flavor is ambiguous` };
    if (code.size > 0 && !widened) return { ok: false, reason: `offsets database (${db}) and tokio's code (${[...code].map((c) => `fs${show(c)}`).join(', ')}) disagree` };
    return { ok: false, reason: `the current task id (database: ${db}) is not visible in tokio's code` };
  }
  if (code.size === 1) {
    const total = [...code][0];
    return { ok: true, taskIdTlsOffset: total, detail: `current task id at fs${show(total)} (from tokio's code; no database entry for tokio ${versions.join(', ') || '?'})` };
  }
  return { ok: false, reason: code.size > 1 ? "tokio's code shows several candidate offsets" : `no offsets for tokio ${versions.join(', ') || '(version unknown)'} and none visible in its code` };
}

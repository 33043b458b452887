// Where the application's OpenTelemetry current span is, for the BPF reader
// in ./current.h (used by hyper-h1-client's reqwest call probe).
//
// The OpenTelemetry API crate (`opentelemetry`, the crate the SDK builds on)
// keeps each thread's current Context in
//   opentelemetry::context::CURRENT_CONTEXT
// a lazily initialised `thread_local!` whose storage is an STT_TLS symbol of
// the executable:
//   lazy::Storage<RefCell<Context>>        up to 0.28
//   lazy::Storage<RefCell<ContextStack>>   later (ContextStack.current_cx)
// and the active span is Context.span: Option<Arc<SynchronizedSpan>> (the
// null pointer is None), whose ArcInner holds SynchronizedSpan.span_context
// { trace_id: TraceId(u128), span_id: SpanId(u64), .. }.
//
// Addresses, from the thread pointer (x86-64 variant II, local-exec TLS of
// the main executable, as src/libs/tokio/context.ts):
//   D = st_value - round_up(PT_TLS memsz, PT_TLS align)
//   state   fs + D + Storage.state                      (== State::Alive)
//   borrow  fs + D + Storage.value + RefCell.borrow      (>= 0: not being written)
//   span    fs + D + Storage.value + RefCell.value [+ ContextStack.current_cx] + Context.span
//   ids     span + ArcInner.data + SynchronizedSpan.span_context + SpanContext.trace_id / span_id
// Every field offset comes from the offsets database (DWARF of a release
// build of that opentelemetry version, tools/gen-layouts.ts --otel-version),
// for exactly the version the binary links, never a neighbour: there is no
// code pattern to cross-check these against. Checks: the TLS symbol's size
// must be the database's Storage size (a different feature set or rustc
// changes it), and on live data the BPF reader uses the ids only when the
// trace id is one the SDK's sampler probe saw this process give a span.
import type { BinaryInfo } from '../../binary';
import { STT_TLS } from '../../binary/elf';
import { demangle } from '../../binary/demangle';
import { findLayout } from '../../plan/layouts';
import type { OtelCxLocation } from '../../bpf/loader';

export const CURRENT_CONTEXT_SYMBOL = /^opentelemetry::context::CURRENT_CONTEXT::\{\{?constant(?:#0)?\}?\}::\{\{?closure(?:#\d)?\}?\}::__RUST_STD_INTERNAL_VAL$/;
const CRATE = 'opentelemetry';

/** The two shapes of CURRENT_CONTEXT (tools/gen-layouts.ts, otelTypes). */
const SHAPES = [
  { storage: 'lazy::Storage<RefCell<opentelemetry::context::ContextStack>>', refcell: 'RefCell<opentelemetry::context::ContextStack>', stack: true },
  { storage: 'lazy::Storage<RefCell<opentelemetry::context::Context>>', refcell: 'RefCell<opentelemetry::context::Context>', stack: false },
];

export type OtelCxResult = { ok: true; location: OtelCxLocation; detail: string } | { ok: false; reason: string };

function roundUp(n: number, a: number): number {
  return a > 1 ? Math.ceil(n / a) * a : n;
}

export function locateOtelCurrentContext(binary: BinaryInfo): OtelCxResult {
  const elf = binary.elf;
  if (elf.header.type !== 2 && !(elf.header.type === 3 && elf.programHeaders.some((p) => p.type === 3 /* PT_INTERP */)))
    return { ok: false, reason: 'not a main executable (TLS of a shared library is not located)' };
  const versions = binary.crates.get(CRATE) ?? [];
  if (versions.length !== 1) return { ok: false, reason: versions.length === 0 ? 'the opentelemetry crate\'s version is unknown' : `several opentelemetry versions linked (${versions.join(', ')})` };
  const version = versions[0];
  const tls = elf.tlsSegment();
  if (!tls) return { ok: false, reason: 'the executable has no TLS segment' };
  const syms = elf.symbols().filter((s) => s.type === STT_TLS && CURRENT_CONTEXT_SYMBOL.test(demangle(s.name) ?? ''));
  const uniq = [...new Map(syms.map((s) => [s.value, s])).values()];
  if (uniq.length === 0) return { ok: false, reason: "opentelemetry's CURRENT_CONTEXT thread-local is not in the symbol table" };
  if (uniq.length > 1) return { ok: false, reason: `${uniq.length} CURRENT_CONTEXT thread-locals` };
  const sym = uniq[0];
  const d = sym.value - roundUp(tls.memsz, tls.align);
  const rustc = binary.rustc?.version;

  const exact = (type: string) => {
    const f = findLayout(type, CRATE, version, rustc);
    return f && f.entry.crateVersion === version ? f : undefined;
  };
  const field = (type: string, name: string): number | undefined => exact(type)?.entry.fields[name];
  for (const shape of SHAPES) {
    const st = exact(shape.storage);
    if (!st) continue;
    const value = st.entry.fields.value, state = st.entry.fields.state;
    const alive = exact('lazy::State');
    const borrow = field(shape.refcell, 'borrow'), rcValue = field(shape.refcell, 'value');
    const current = shape.stack ? field('opentelemetry::context::ContextStack', 'current_cx') : 0;
    const span = field('opentelemetry::context::Context', 'span');
    const data = field('ArcInner<opentelemetry::trace::context::SynchronizedSpan>', 'data');
    const sc = field('opentelemetry::trace::context::SynchronizedSpan', 'span_context');
    const traceId = field('opentelemetry::trace::span_context::SpanContext', 'trace_id');
    const spanId = field('opentelemetry::trace::span_context::SpanContext', 'span_id');
    const parts = { value, state, alive: alive?.entry.fields.Alive, borrow, rcValue, current, span, data, sc, traceId, spanId };
    const missing = Object.entries(parts).filter(([, v]) => v === undefined).map(([k]) => k);
    if (missing.length) return { ok: false, reason: `offsets database: opentelemetry ${version} lacks ${missing.join(', ')}` };
    if (alive!.entry.fields.$tagSize !== 1 || alive!.entry.fields.$tag !== 0)
      return { ok: false, reason: `thread-local state of opentelemetry ${version} is not a one-byte tag` };
    if (sym.size !== st.entry.size)
      return { ok: false, reason: `CURRENT_CONTEXT is ${sym.size} bytes, the database's ${shape.storage} of opentelemetry ${version} ${st.entry.size} (other features or rustc): not read` };
    const location: OtelCxLocation = {
      stateOff: d + state!,
      borrowOff: d + value! + borrow!,
      spanPtrOff: d + value! + rcValue! + current! + span!,
      alive: parts.alive!,
      traceOff: data! + sc! + traceId!,
      spanIdOff: data! + sc! + spanId!,
    };
    const show = (n: number) => (n < 0 ? `-0x${(-n).toString(16)}` : `+0x${n.toString(16)}`);
    return {
      ok: true, location,
      detail: `current span at fs${show(location.spanPtrOff)} -> +0x${location.traceOff.toString(16)} trace id, +0x${location.spanIdOff.toString(16)} span id (database: ${st.from}; ${shape.stack ? 'ContextStack' : 'Context'} storage, ${sym.size} bytes as the symbol says; confirmed per read by the sampler's trace ids)`,
    };
  }
  return { ok: false, reason: `no offsets for opentelemetry ${version} (rustc ${rustc ?? '?'}) in the offsets database` };
}

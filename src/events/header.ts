// The part of every event that is the same for all libraries: the header
// (bpf/include/events.h, struct event_header), the per-probe counters, and
// the dispatch of ring records to the library that declared their kind.
// test/unit/event-layout.test.ts checks these offsets against the C header.

export const COMMON_LAYOUTS = {
  structs: {
    event_header: { kind: 0, probe_id: 2, pid: 4, tid: 8, cpu: 12, instance: 14, ts_ns: 16, $size: 24 },
    probe_stats: { hits: 0, events: 8, drops: 16, bad_layout: 24, no_entry: 32, $size: 64 },
    probe_config: { v: 0, $size: 256 },
    binary_context: {
      task_id_tls_off: 0, flags: 8, otel_state_off: 16, otel_borrow_off: 24, otel_span_ptr_off: 32, otel_trace_off: 40, otel_span_off: 42, otel_alive: 44, thread_ctx_off: 48, $size: 64,
    },
    process_event: { hdr: 0, $size: 24 },
    thread_spawn_event: { hdr: 0, parent_task_id: 24, child_tid: 32, $size: 40 },
  },
  constants: {
    MAX_PROBES: 256, PROBE_CONFIG_WORDS: 64, MAX_PROBE_CONFIGS: 1024, MAX_BINARIES: 256, BINCTX_TASK_ID: 1, BINCTX_OTEL_CX: 2, BINCTX_THREAD_CTX: 4,
    MAX_TRACED_PIDS: 65536, PROCESS_EVENTS_STATS: 255, THREAD_EVENTS_STATS: 254,
  },
  /** The agent's own events (bpf/process.bpf.c); the libraries' kinds are in their layouts. */
  kinds: { PROCESS_EXEC: 0xf0, THREAD_SPAWN: 0xf1 },
} as const;

const H = COMMON_LAYOUTS.structs.event_header;
export const EVENT_HEADER_SIZE = H.$size;

export interface EventHeader {
  kind: number;
  probeId: number;
  pid: number;
  tid: number;
  cpu: number;
  /** Index of the function symbol (instance) whose probe fired. */
  instance: number;
  /** bpf_ktime_get_ns(): CLOCK_MONOTONIC. */
  tsNs: bigint;
}

export function decodeHeader(dv: DataView, off: number): EventHeader {
  return {
    kind: dv.getUint16(off + H.kind, true),
    probeId: dv.getUint16(off + H.probe_id, true),
    pid: dv.getUint32(off + H.pid, true),
    tid: dv.getUint32(off + H.tid, true),
    cpu: dv.getUint16(off + H.cpu, true),
    instance: dv.getUint16(off + H.instance, true),
    tsNs: dv.getBigUint64(off + H.ts_ns, true),
  };
}

/** The kind of a record, read without decoding the rest of the header. */
export function recordKind(dv: DataView, off: number): number {
  return dv.getUint16(off + H.kind, true);
}

/** Thrown for a record that does not fit its kind. */
export class DecodeError extends Error {}

/**
 * A u64 read as a JS number. Exact for user-space addresses (below 2^47) and
 * any value below 2^53; larger values lose low bits, which is fine for the
 * words the agent only compares with addresses.
 */
export function readU64Number(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 4294967296;
}

let bytesDv: DataView | undefined;
let bytesBuf: Buffer | undefined;
/** A Buffer over the same memory as `dv` (cached: the ring's view does not change). */
export function bytesOf(dv: DataView): Buffer {
  if (dv !== bytesDv) { bytesDv = dv; bytesBuf = Buffer.from(dv.buffer, dv.byteOffset, dv.byteLength); }
  return bytesBuf!;
}

/** Copies `n` bytes at `off` out of the ring (the view is reused once the record is consumed). */
export function copyBytes(dv: DataView, off: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  b.set(new Uint8Array(dv.buffer, dv.byteOffset + off, n));
  return b;
}

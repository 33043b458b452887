// W3C Trace Context (traceparent, version 00 and forward-compatible versions)
// and id generation.
import { randomBytes } from 'node:crypto';

export interface TraceParent {
  traceId: string;
  spanId: string;
  flags: number;
}

const RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export function parseTraceParent(v: string | undefined): TraceParent | undefined {
  if (!v) return undefined;
  const m = RE.exec(v.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined; // v00 has exactly four fields
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

// Ids come from a pooled random buffer: one crypto call per 512 ids.
let pool = Buffer.alloc(0);
let pos = 0;
function take(n: number): string {
  if (pos + n > pool.length) { pool = randomBytes(4096); pos = 0; }
  const s = pool.toString('hex', pos, pos + n);
  pos += n;
  return s;
}

export function newTraceId(): string {
  let id = take(16);
  while (/^0+$/.test(id)) id = take(16);
  return id;
}

export function newSpanId(): string {
  let id = take(8);
  while (/^0+$/.test(id)) id = take(8);
  return id;
}

// Byte-level traceparent parse for the hot path: same rules as
// parseTraceParent, straight into a span record's id words.

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Where parseTraceParentBytes puts what it read. */
export interface TraceParentWords { t0: number; t1: number; t2: number; t3: number; p0: number; p1: number }

/**
 * Four lowercase hex digits (a little-endian u32 of their ASCII bytes, first
 * digit lowest) -> their 16-bit value, or -1. Word at a time: each byte's
 * nibble is (c & 0xf) + 9 * (c >> 6), and the digits are valid exactly when
 * re-encoding the nibbles gives the same bytes (so uppercase, which the W3C
 * format does not allow, fails too).
 */
function hex4(x: number): number {
  if ((x & 0x80808080) !== 0) return -1;
  const v = (x & 0x0f0f0f0f) + ((x >>> 6) & 0x01010101) * 9;
  if (((v + 0x70707070) & 0x80808080) !== 0) return -1; // a nibble above 15 ('g'..'o', 'w'..)
  const gt9 = ((v + 0x76767676) >>> 7) & 0x01010101;
  if (((v + 0x30303030 + gt9 * 0x27) >>> 0) !== (x >>> 0)) return -1;
  const t = ((v & 0x000f000f) << 4) | ((v >>> 8) & 0x000f000f);
  return ((t & 0xff) << 8) | ((t >>> 16) & 0xff);
}

/** Eight hex digits at `at` -> a 32-bit id word, or -1. */
function hexWord8(v: DataView, at: number): number {
  const a = hex4(v.getUint32(at, true));
  const b = hex4(v.getUint32(at + 4, true));
  return a < 0 || b < 0 ? -1 : ((a << 16) | b) >>> 0;
}

/**
 * Parses the traceparent value b[s..e) (already trimmed; `v` is a DataView
 * over the same bytes with the same offsets). On success writes the trace id
 * to t0..t3 and the parent span id to p0..p1 of `out`, and returns the
 * trace-flags byte; returns -1 for an invalid value (and leaves `out` alone).
 */
export function parseTraceParentBytes(b: Uint8Array, v: DataView, s: number, e: number, out: TraceParentWords): number {
  const n = e - s;
  if (n < 55) return -1;
  const v0 = hexNibble(b[s]), v1 = hexNibble(b[s + 1]);
  if (v0 < 0 || v1 < 0 || b[s + 2] !== 0x2d || b[s + 35] !== 0x2d || b[s + 52] !== 0x2d) return -1;
  const version = v0 * 16 + v1;
  if (version === 0xff) return -1;
  if (n > 55 && (version === 0 || b[s + 55] !== 0x2d)) return -1;
  const t0 = hexWord8(v, s + 3), t1 = hexWord8(v, s + 11), t2 = hexWord8(v, s + 19), t3 = hexWord8(v, s + 27);
  const p0 = hexWord8(v, s + 36), p1 = hexWord8(v, s + 44);
  const f0 = hexNibble(b[s + 53]), f1 = hexNibble(b[s + 54]);
  if (t0 < 0 || t1 < 0 || t2 < 0 || t3 < 0 || p0 < 0 || p1 < 0 || f0 < 0 || f1 < 0) return -1;
  if ((t0 | t1 | t2 | t3) === 0 || (p0 | p1) === 0) return -1;
  out.t0 = t0; out.t1 = t1; out.t2 = t2; out.t3 = t3; out.p0 = p0; out.p1 = p1;
  return f0 * 16 + f1;
}

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

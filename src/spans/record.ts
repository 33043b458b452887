// The span record every library builds and the export stage encodes.
//
// It is built for the hot path: a busy service produces 100k spans/s and the
// agent's budget is about a microsecond of CPU each. So a record holds no
// per-span object graph:
//  - ids are 32-bit words (trace id t0..t3, span id s0..s1, parent p0..p1, in
//    the big-endian order of their hex form), never hex strings;
//  - attributes are a flat list of (key id, value) entries in number arrays;
//    a string value is either a JS string or a byte range of `src`, a buffer
//    the library fills (a copy of the request head, say), so header values go
//    from the captured bytes to the OTLP request without becoming strings;
//  - records are pooled: a sink must copy what it needs during submit() and
//    keep no reference to the record afterwards.
// Attribute keys are interned once (attrKey) and the encoder keeps their
// encoded form, so a key is never re-encoded per span.
import { randomFillSync } from 'node:crypto';
import type { AgentSpan, Attributes, SpanKindName } from './types';

/** OTLP Span.SpanKind values. */
export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
export type SpanKindValue = (typeof SpanKind)[keyof typeof SpanKind];
/** OTLP Status.StatusCode values. */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;
export type StatusCodeValue = (typeof StatusCode)[keyof typeof StatusCode];

const KIND_NAMES: Record<number, SpanKindName> = { 1: 'INTERNAL', 2: 'SERVER', 3: 'CLIENT', 4: 'PRODUCER', 5: 'CONSUMER' };
const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'] as const;

// ---------------------------------------------------------------- attribute keys

const keyNames: string[] = [];
const keyIds = new Map<string, number>();

/** The id of an attribute key; the same name always gives the same id. */
export function attrKey(name: string): number {
  let id = keyIds.get(name);
  if (id === undefined) {
    id = keyNames.length;
    keyNames.push(name);
    keyIds.set(name, id);
  }
  return id;
}

export function attrKeyName(id: number): string {
  return keyNames[id];
}

/** Value types of an attribute entry. */
export const AttrType = { STRING: 0, BYTES_UTF8: 1, INT: 2, BOOL: 3, DOUBLE: 4 } as const;

// ---------------------------------------------------------------- ids

// Random ids come from a pooled buffer: one crypto call per 1024 words.
const RAND_WORDS = 1024;
const rand = new Uint32Array(RAND_WORDS);
let randPos = RAND_WORDS;
function randomWord(): number {
  if (randPos >= RAND_WORDS) { randomFillSync(rand); randPos = 0; }
  return rand[randPos++];
}

function hexWord(hex: string, i: number): number {
  return parseInt(hex.slice(i * 8, i * 8 + 8), 16) >>> 0;
}

function wordHex(w: number): string {
  return (w >>> 0).toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------- the record

export class SpanRecord {
  t0 = 0; t1 = 0; t2 = 0; t3 = 0;
  s0 = 0; s1 = 0;
  /** Parent span id; both 0 = a root span. */
  p0 = 0; p1 = 0;
  parentRemote = false;
  /** W3C trace-flags byte (bit 0 = sampled). */
  flags = 1;
  traceState: string | undefined = undefined;
  name = '';
  kind: number = SpanKind.INTERNAL;
  startUnixNano = 0n;
  endUnixNano = 0n;
  statusCode: number = StatusCode.UNSET;
  statusMessage: string | undefined = undefined;
  /** Process the span came from: selects its resource. */
  pid = 0;
  /** Instrumentation scope name, e.g. "otel-rust-agent/hyper". */
  scope = '';
  /** Bytes that BYTES_UTF8 attribute values point into. */
  src: Uint8Array | undefined = undefined;

  /** Attribute entries: attrs[3i] = key id * 8 + type, attrs[3i+1], attrs[3i+2] = value (see add*). */
  readonly attrs: number[] = [];
  /** String values of STRING entries (attrs[3i+1] indexes this). */
  readonly strs: string[] = [];

  // -- ids

  newTraceId(): void {
    do { this.t0 = randomWord(); this.t1 = randomWord(); this.t2 = randomWord(); this.t3 = randomWord(); }
    while ((this.t0 | this.t1 | this.t2 | this.t3) === 0);
  }

  newSpanId(): void {
    do { this.s0 = randomWord(); this.s1 = randomWord(); } while ((this.s0 | this.s1) === 0);
  }

  get hasParent(): boolean {
    return (this.p0 | this.p1) !== 0;
  }

  setTraceIdHex(hex: string): void {
    this.t0 = hexWord(hex, 0); this.t1 = hexWord(hex, 1); this.t2 = hexWord(hex, 2); this.t3 = hexWord(hex, 3);
  }

  setParentSpanIdHex(hex: string): void {
    this.p0 = hexWord(hex, 0); this.p1 = hexWord(hex, 1);
  }

  traceIdHex(): string { return wordHex(this.t0) + wordHex(this.t1) + wordHex(this.t2) + wordHex(this.t3); }
  spanIdHex(): string { return wordHex(this.s0) + wordHex(this.s1); }
  parentSpanIdHex(): string | undefined { return this.hasParent ? wordHex(this.p0) + wordHex(this.p1) : undefined; }

  // -- attributes

  addString(key: number, value: string): void {
    this.attrs.push(key * 8 + AttrType.STRING, this.strs.length, 0);
    this.strs.push(value);
  }

  /** A string value that is bytes [start, end) of `src` (UTF-8; invalid bytes are replaced when encoded). */
  addBytes(key: number, start: number, end: number): void {
    this.attrs.push(key * 8 + AttrType.BYTES_UTF8, start, end);
  }

  addInt(key: number, value: number): void {
    this.attrs.push(key * 8 + AttrType.INT, value, 0);
  }

  addBool(key: number, value: boolean): void {
    this.attrs.push(key * 8 + AttrType.BOOL, value ? 1 : 0, 0);
  }

  addDouble(key: number, value: number): void {
    this.attrs.push(key * 8 + AttrType.DOUBLE, value, 0);
  }

  get attrCount(): number {
    return this.attrs.length / 3;
  }

  /** Index of the entry with this key, or -1. */
  findAttr(key: number): number {
    for (let i = 0; i < this.attrs.length; i += 3) if (this.attrs[i] >>> 3 === key) return i / 3;
    return -1;
  }

  removeAttr(key: number): void {
    const i = this.findAttr(key);
    if (i >= 0) this.attrs.splice(i * 3, 3);
  }

  /** The value of entry i as a JS value (slow path: console, tests). */
  attrValue(i: number): string | number | boolean {
    const tag = this.attrs[i * 3];
    const a = this.attrs[i * 3 + 1];
    switch (tag & 7) {
      case AttrType.STRING: return this.strs[a];
      case AttrType.BYTES_UTF8: return Buffer.from(this.src!.buffer, this.src!.byteOffset + a, this.attrs[i * 3 + 2] - a).toString('utf8');
      case AttrType.BOOL: return a !== 0;
      default: return a;
    }
  }

  attributes(): Attributes {
    const out: Attributes = {};
    for (let i = 0; i < this.attrCount; i++) out[keyNames[this.attrs[i * 3] >>> 3]] = this.attrValue(i);
    return out;
  }

  /** A plain object copy (console printer, tests); the record itself is pooled. */
  toAgentSpan(): AgentSpan {
    return {
      traceId: this.traceIdHex(),
      spanId: this.spanIdHex(),
      parentSpanId: this.parentSpanIdHex(),
      parentIsRemote: this.hasParent ? this.parentRemote : undefined,
      traceFlags: this.flags,
      traceState: this.traceState,
      name: this.name,
      kind: KIND_NAMES[this.kind] ?? 'INTERNAL',
      startTimeUnixNano: this.startUnixNano,
      endTimeUnixNano: this.endUnixNano,
      attributes: this.attributes(),
      status: this.statusMessage !== undefined
        ? { code: STATUS_NAMES[this.statusCode] ?? 'UNSET', message: this.statusMessage }
        : { code: STATUS_NAMES[this.statusCode] ?? 'UNSET' },
      pid: this.pid,
      scope: this.scope,
    };
  }

  reset(): void {
    this.t0 = this.t1 = this.t2 = this.t3 = 0;
    this.s0 = this.s1 = this.p0 = this.p1 = 0;
    this.parentRemote = false;
    this.flags = 1;
    this.traceState = undefined;
    this.name = '';
    this.kind = SpanKind.INTERNAL;
    this.startUnixNano = this.endUnixNano = 0n;
    this.statusCode = StatusCode.UNSET;
    this.statusMessage = undefined;
    this.pid = 0;
    this.scope = '';
    this.src = undefined;
    this.attrs.length = 0;
    this.strs.length = 0;
  }
}

/** The inverse of toAgentSpan (tests, and spans that arrive as objects). */
export function recordFromAgentSpan(s: AgentSpan, rec = new SpanRecord()): SpanRecord {
  rec.setTraceIdHex(s.traceId);
  rec.s0 = hexWord(s.spanId, 0); rec.s1 = hexWord(s.spanId, 1);
  if (s.parentSpanId) rec.setParentSpanIdHex(s.parentSpanId);
  rec.parentRemote = s.parentIsRemote === true;
  rec.flags = s.traceFlags;
  rec.traceState = s.traceState;
  rec.name = s.name;
  rec.kind = SpanKind[s.kind];
  rec.startUnixNano = s.startTimeUnixNano;
  rec.endUnixNano = s.endTimeUnixNano;
  rec.statusCode = StatusCode[s.status.code];
  rec.statusMessage = s.status.message;
  rec.pid = s.pid;
  rec.scope = s.scope;
  for (const [k, v] of Object.entries(s.attributes)) {
    const id = attrKey(k);
    if (typeof v === 'string') rec.addString(id, v);
    else if (typeof v === 'boolean') rec.addBool(id, v);
    else if (Number.isInteger(v)) rec.addInt(id, v);
    else rec.addDouble(id, v);
  }
  return rec;
}

// ---------------------------------------------------------------- pool

const pool: SpanRecord[] = [];
const POOL_MAX = 4096;

export function acquireRecord(): SpanRecord {
  return pool.pop() ?? new SpanRecord();
}

export function releaseRecord(rec: SpanRecord): void {
  if (pool.length >= POOL_MAX) return;
  rec.reset();
  pool.push(rec);
}

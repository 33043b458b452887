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

/** REALTIME - MONOTONIC in nanoseconds (about the Unix time of boot), as 32-bit halves. */
export interface ClockOffset { hi: number; lo: number }

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
export const AttrType = { STRING: 0, BYTES_UTF8: 1, INT: 2, BOOL: 3, DOUBLE: 4, SET: 5, BYTES_ASCII: 6 } as const;

/**
 * A fixed group of attributes that many spans share (method + scheme +
 * protocol version, a status code with its error.type, ...). A library makes
 * each one once (attrSet) and adds it to spans with SpanRecord.addSet: the
 * export stage encodes a set once and copies the encoding, instead of
 * encoding each pair of each span.
 */
export class AttrSet {
  /** Exporters keep their encoding of the set here. */
  exportCache: unknown = undefined;
  constructor(readonly pairs: readonly (readonly [number, string | number | boolean])[]) {}
}

export function attrSet(pairs: readonly (readonly [number, string | number | boolean])[]): AttrSet {
  return new AttrSet(pairs);
}

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

/**
 * dst[at..at+n) = src[from..from+n) through DataViews, four bytes at a time
 * (offsets relative to each view): no view object is allocated
 * (subarray/Buffer.copy allocate one, about 150 ns here) and it beats a byte
 * loop (about 3 ns a byte here) above a few bytes.
 */
export function copyView(dst: DataView, at: number, src: DataView, from: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) dst.setUint32(at + i, src.getUint32(from + i, true), true);
  for (; i < n; i++) dst.setUint8(at + i, src.getUint8(from + i));
}

/** copyView that also says whether every byte copied was ASCII (below 0x80). */
export function copyViewAscii(dst: DataView, at: number, src: DataView, from: number, n: number): boolean {
  let high = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) { const x = src.getUint32(from + i, true); high |= x; dst.setUint32(at + i, x, true); }
  for (; i < n; i++) { const x = src.getUint8(from + i); high |= x; dst.setUint8(at + i, x); }
  return (high & 0x80808080) === 0;
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
  /** Unix-epoch nanoseconds as 32-bit halves (hi * 2^32 + lo): no BigInt on the hot path. */
  startHi = 0; startLo = 0;
  endHi = 0; endLo = 0;
  statusCode: number = StatusCode.UNSET;
  statusMessage: string | undefined = undefined;
  /** Process the span came from: selects its resource. */
  pid = 0;
  /** Instrumentation scope name, e.g. "otel-rust-agent/hyper". */
  scope = '';
  /** Bytes that BYTES_UTF8 attribute values point into. */
  src: Uint8Array | undefined = undefined;
  /** A DataView of exactly `src` when the record made `src` itself (the encoder copies through it). */
  srcView: DataView | undefined = undefined;
  /** A buffer the record owns and keeps across pool reuse (ownedSrc(), addBytesCopy()). */
  private owned: Buffer | undefined = undefined;
  private ownedView: DataView | undefined = undefined;
  /** Bytes of `owned` used by addBytesCopy. */
  private ownedLen = 0;

  /**
   * Attribute entries: attrs[3i] = key id * 8 + type, attrs[3i+1], attrs[3i+2]
   * = value (see add*), for i < attrCount. The arrays only grow: a pooled
   * record reuses them without reallocating.
   */
  readonly attrs: number[] = [];
  /** Entries in attrs (3 numbers each). */
  nAttrs = 0;
  /** String values of STRING entries (attrs[3i+1] indexes this); nStrs of them are live. */
  readonly strs: string[] = [];
  nStrs = 0;
  /** Attribute sets of SET entries (attrs[3i+1] indexes this). */
  readonly sets: AttrSet[] = [];
  nSets = 0;

  /**
   * A buffer of at least `n` bytes that this record owns, set as `src`: a
   * library copies captured bytes into it instead of allocating per span
   * (the record keeps it when it goes back to the pool).
   */
  ownedSrc(n: number): Buffer {
    let b = this.owned;
    if (!b || b.length < n) {
      this.owned = b = Buffer.allocUnsafeSlow(Math.max(512, 1 << Math.ceil(Math.log2(Math.max(n, 1)))));
      this.ownedView = new DataView(b.buffer, b.byteOffset, b.length);
    }
    this.src = b;
    this.srcView = this.ownedView;
    return b;
  }

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

  // -- times

  get startUnixNano(): bigint { return (BigInt(this.startHi) << 32n) | BigInt(this.startLo); }
  set startUnixNano(v: bigint) { this.startHi = Number(v >> 32n); this.startLo = Number(v & 0xffffffffn); }
  get endUnixNano(): bigint { return (BigInt(this.endHi) << 32n) | BigInt(this.endLo); }
  set endUnixNano(v: bigint) { this.endHi = Number(v >> 32n); this.endLo = Number(v & 0xffffffffn); }

  /** Start time from a CLOCK_MONOTONIC timestamp (32-bit halves, as read from an event) and the clock offset. */
  setStartMono(monoLo: number, monoHi: number, clock: ClockOffset): void {
    const lo = monoLo + clock.lo;
    const carry = lo >= 4294967296 ? 1 : 0;
    this.startLo = lo - carry * 4294967296;
    this.startHi = monoHi + clock.hi + carry;
  }

  setEndMono(monoLo: number, monoHi: number, clock: ClockOffset): void {
    const lo = monoLo + clock.lo;
    const carry = lo >= 4294967296 ? 1 : 0;
    this.endLo = lo - carry * 4294967296;
    this.endHi = monoHi + clock.hi + carry;
  }

  // -- attributes

  private push3(a: number, b: number, c: number): void {
    const i = this.nAttrs * 3;
    const arr = this.attrs;
    if (i < arr.length) { arr[i] = a; arr[i + 1] = b; arr[i + 2] = c; } else arr.push(a, b, c);
    this.nAttrs++;
  }

  addString(key: number, value: string): void {
    const j = this.nStrs++;
    if (j < this.strs.length) this.strs[j] = value; else this.strs.push(value);
    this.push3(key * 8 + AttrType.STRING, j, 0);
  }

  /** A string value that is bytes [start, end) of `src` (UTF-8; invalid bytes are replaced when encoded). */
  addBytes(key: number, start: number, end: number): void {
    this.push3(key * 8 + AttrType.BYTES_UTF8, start, end);
  }

  /**
   * A string value copied from bytes [start, end) of `from` (the ring, say) into the
   * record's own buffer, which becomes `src`: only the bytes spans use are
   * copied, with no allocation once the pooled record's buffer is big enough.
   * Do not mix with an `src` set by hand.
   */
  addBytesCopy(key: number, from: DataView, start: number, end: number): void {
    const n = end - start;
    const at = this.ownedLen;
    let o = this.owned;
    let ov = this.ownedView!;
    if (!o || at + n > o.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(512, 1 << Math.ceil(Math.log2(at + n))));
      if (o && at > 0) o.copy(grown, 0, 0, at);
      this.owned = o = grown;
      this.ownedView = ov = new DataView(grown.buffer, grown.byteOffset, grown.length);
    }
    const ascii = copyViewAscii(ov, at, from, start, n);
    this.ownedLen = at + n;
    this.src = o;
    this.srcView = ov;
    // ASCII bytes need no UTF-8 check when encoded.
    this.push3(key * 8 + (ascii ? AttrType.BYTES_ASCII : AttrType.BYTES_UTF8), at, at + n);
  }

  /** Every attribute of a shared set (see AttrSet). */
  addSet(set: AttrSet): void {
    const j = this.nSets++;
    if (j < this.sets.length) this.sets[j] = set; else this.sets.push(set);
    this.push3(AttrType.SET, j, 0);
  }

  addInt(key: number, value: number): void {
    this.push3(key * 8 + AttrType.INT, value, 0);
  }

  addBool(key: number, value: boolean): void {
    this.push3(key * 8 + AttrType.BOOL, value ? 1 : 0, 0);
  }

  addDouble(key: number, value: number): void {
    this.push3(key * 8 + AttrType.DOUBLE, value, 0);
  }

  get attrCount(): number {
    return this.nAttrs;
  }

  /** Index of the entry with this key, or -1 (sets are expanded into plain entries when they hold it). */
  findAttr(key: number): number {
    for (let i = 0; i < this.nAttrs; i++) {
      const tag = this.attrs[i * 3];
      if ((tag & 7) === AttrType.SET) {
        if (this.sets[this.attrs[i * 3 + 1]].pairs.some(([k]) => k === key)) { this.expandSet(i); return this.findAttr(key); }
      } else if (tag >>> 3 === key) return i;
    }
    return -1;
  }

  removeAttr(key: number): void {
    const i = this.findAttr(key);
    if (i < 0) return;
    this.attrs.copyWithin(i * 3, i * 3 + 3, this.nAttrs * 3);
    this.nAttrs--;
  }

  /** Replaces set entry i by plain entries of its pairs (slow path: a set is edited). */
  private expandSet(i: number): void {
    const set = this.sets[this.attrs[i * 3 + 1]];
    this.attrs.copyWithin(i * 3, i * 3 + 3, this.nAttrs * 3);
    this.nAttrs--;
    for (const [k, v] of set.pairs) {
      if (typeof v === 'string') this.addString(k, v);
      else if (typeof v === 'boolean') this.addBool(k, v);
      else if (Number.isInteger(v)) this.addInt(k, v);
      else this.addDouble(k, v);
    }
  }

  /** The value of entry i as a JS value (slow path: console, tests). */
  attrValue(i: number): string | number | boolean {
    const tag = this.attrs[i * 3];
    const a = this.attrs[i * 3 + 1];
    switch (tag & 7) {
      case AttrType.STRING: return this.strs[a];
      case AttrType.BYTES_UTF8: case AttrType.BYTES_ASCII: return Buffer.from(this.src!.buffer, this.src!.byteOffset + a, this.attrs[i * 3 + 2] - a).toString('utf8');
      case AttrType.BOOL: return a !== 0;
      default: return a;
    }
  }

  attributes(): Attributes {
    const out: Attributes = {};
    for (let i = 0; i < this.attrCount; i++) {
      if ((this.attrs[i * 3] & 7) === AttrType.SET) for (const [k, v] of this.sets[this.attrs[i * 3 + 1]].pairs) out[keyNames[k]] = v;
      else out[keyNames[this.attrs[i * 3] >>> 3]] = this.attrValue(i);
    }
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
    this.startHi = this.startLo = this.endHi = this.endLo = 0;
    this.statusCode = StatusCode.UNSET;
    this.statusMessage = undefined;
    this.pid = 0;
    this.scope = '';
    this.src = undefined;
    this.srcView = undefined;
    this.ownedLen = 0;
    this.nAttrs = 0;
    for (let i = 0; i < this.nStrs; i++) this.strs[i] = '';
    this.nStrs = 0;
    this.nSets = 0;
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

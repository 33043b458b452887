// SpanRecords -> OTLP ExportTraceServiceRequest bytes
// (opentelemetry/proto/collector/trace/v1/trace_service.proto), written
// directly, without an intermediate object per span:
//  - each span is encoded once, when it is submitted, into the buffer of its
//    (resource, scope) group; ids go in as bytes, header values as the bytes
//    the probe captured;
//  - the Resource and InstrumentationScope messages are encoded once per
//    process and scope and reused by every request;
//  - attribute (key, value) pairs of low cardinality (method, scheme, status
//    code, port, ...) are encoded once and copied;
//  - finish() assembles the request with one copy of the span bytes.
// Field numbers are those of opentelemetry-proto; test/unit/otlp-encode.test.ts
// decodes our output and the official exporter's with the official protos and
// compares every field.
import { ProtoWriter, varintSize } from './proto';
import { AttrType, attrKeyName, copyView, type AttrSet, type SpanRecord } from '../../spans/record';
import type { AttributeValue, Attributes, ProcessResource } from '../../spans/types';

// Field tags (field number << 3 | wire type).
const T = {
  req_resource_spans: 0x0a,
  rs_resource: 0x0a, rs_scope_spans: 0x12, rs_schema_url: 0x1a,
  res_attributes: 0x0a,
  ss_scope: 0x0a, ss_spans: 0x12,
  scope_name: 0x0a, scope_version: 0x12,
  kv_key: 0x0a, kv_value: 0x12,
  av_string: 0x0a, av_bool: 0x10, av_int: 0x18, av_double: 0x21,
  span_trace_id: 0x0a, span_span_id: 0x12, span_trace_state: 0x1a, span_parent_span_id: 0x22,
  span_name: 0x2a, span_kind: 0x30, span_start: 0x39, span_end: 0x41, span_attributes: 0x4a,
  span_status: 0x7a,
  status_message: 0x12, status_code: 0x18,
} as const;
// Span.flags is field 16, fixed32: tag varint 0x85 0x01.
const SPAN_FLAGS_TAG0 = 0x85, SPAN_FLAGS_TAG1 = 0x01;
/** SpanFlags: the parent's is_remote is known (bit 8), and true (bit 9). */
const FLAG_HAS_IS_REMOTE = 0x100, FLAG_IS_REMOTE = 0x200;

// ---------------------------------------------------------------- shared encodings

function encodeAnyValue(w: ProtoWriter, v: AttributeValue): void {
  if (typeof v === 'string') { w.byte(T.av_string); w.string(v); }
  else if (typeof v === 'boolean') { w.byte(T.av_bool); w.byte(v ? 1 : 0); }
  else if (Number.isInteger(v)) { w.byte(T.av_int); w.int64(v); }
  else { w.byte(T.av_double); w.double(v); }
}

/** One KeyValue message body. */
function encodeKeyValue(w: ProtoWriter, key: string, v: AttributeValue): void {
  w.byte(T.kv_key); w.string(key);
  w.byte(T.kv_value);
  const m = w.beginLen(1);
  encodeAnyValue(w, v);
  w.endLen(m);
}

/** A Resource message body from attributes. */
export function encodeResource(attrs: Attributes): Buffer {
  const w = new ProtoWriter(1024);
  for (const [k, v] of Object.entries(attrs)) {
    w.byte(T.res_attributes);
    const m = w.beginLen(2);
    encodeKeyValue(w, k, v);
    w.endLen(m);
  }
  return w.bytes();
}

export function encodeScope(name: string, version: string): Buffer {
  const w = new ProtoWriter(128);
  w.byte(T.scope_name); w.string(name);
  if (version) { w.byte(T.scope_version); w.string(version); }
  return w.bytes();
}

/** Span.attributes fields (tag, length, KeyValue) of low-cardinality values are encoded once per (key, value). */
const CACHE_PER_KEY = 512;

function attributeField(key: number, v: AttributeValue): Buffer {
  const w = new ProtoWriter(64);
  w.byte(T.span_attributes);
  const m = w.beginLen(1);
  encodeKeyValue(w, attrKeyName(key), v);
  w.endLen(m);
  return w.bytes();
}

/** Key field (tag + length + key bytes) of a KeyValue, by key id. */
const keyFields: Buffer[] = [];
function keyField(key: number): Buffer {
  let b = keyFields[key];
  if (!b) {
    const w = new ProtoWriter(64);
    w.byte(T.kv_key); w.string(attrKeyName(key));
    keyFields[key] = b = w.bytes();
  }
  return b;
}

/** Bytes as little-endian u32 words (zero-padded), for copying with DataView.setUint32. */
interface Words { n: number; words: number[] }

function wordsOf(b: Buffer): Words {
  const words: number[] = [];
  for (let i = 0; i < b.length; i += 4) words.push((b[i] | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16) | ((b[i + 3] ?? 0) << 24)) >>> 0);
  return { n: b.length, words };
}

/**
 * Writes pre-encoded bytes at p, four at a time: typed-array stores and
 * TypedArray.set each cost far more per call than a DataView u32 store here.
 * Writes up to 3 bytes past the end (the caller has room; they are
 * overwritten by what follows). Returns the new position.
 */
function putWords(v: DataView, p: number, w: Words): number {
  const ws = w.words;
  for (let i = 0; i < ws.length; i++) v.setUint32(p + i * 4, ws[i], true);
  return p + w.n;
}

const keyWords: Words[] = [];
function keyFieldWords(key: number): Words {
  return keyWords[key] ??= wordsOf(keyField(key));
}

const nameWords = new Map<string, Words>();
function nameFieldWords(name: string): Words | undefined {
  let w = nameWords.get(name);
  if (w === undefined && nameWords.size < 4096 && name.length <= 128) {
    const pw = new ProtoWriter(64);
    pw.byte(T.span_name); pw.string(name);
    nameWords.set(name, (w = wordsOf(pw.bytes())));
  }
  return w;
}

/** The Span.attributes fields of a shared attribute set, encoded once (kept on the set). */
function setWords(set: AttrSet): Words {
  let w = set.exportCache as Words | undefined;
  if (!w) {
    const pw = new ProtoWriter(128);
    for (const [k, val] of set.pairs) pw.raw(attributeField(k, val));
    set.exportCache = w = wordsOf(pw.bytes());
  }
  return w;
}

const intWords: Map<number, Words>[] = [];
function cachedIntWords(key: number, v: number): Words | undefined {
  let c = intWords[key];
  if (!c) intWords[key] = c = new Map();
  let w = c.get(v);
  if (w === undefined && c.size < CACHE_PER_KEY) c.set(v, (w = wordsOf(attributeField(key, v))));
  return w;
}

const stringWords: Map<string, Words>[] = [];
function cachedStringWords(key: number, s: string): Words | undefined {
  let c = stringWords[key];
  if (!c) stringWords[key] = c = new Map();
  let w = c.get(s);
  if (w === undefined && c.size < CACHE_PER_KEY && s.length <= 64) c.set(s, (w = wordsOf(attributeField(key, s))));
  return w;
}

/**
 * Encodes one Span message body into `w`. The fixed part and the common
 * attribute forms are written straight into the buffer (DataView u32 stores,
 * one capacity check each); the rare forms go through the writer's checked
 * methods.
 */
export function encodeSpan(w: ProtoWriter, r: SpanRecord): void {
  const nf = nameFieldWords(r.name);
  // Fixed fields: ids 28 + parent 10 + kind 2 + times 18 = 58, the name, +4 slack.
  w.ensure(64 + (nf ? nf.n : 0));
  let v = w.view;
  let p = w.pos;
  v.setUint16(p, T.span_trace_id | (16 << 8), true);
  v.setUint32(p + 2, r.t0, false); v.setUint32(p + 6, r.t1, false); v.setUint32(p + 10, r.t2, false); v.setUint32(p + 14, r.t3, false);
  v.setUint16(p + 18, T.span_span_id | (8 << 8), true);
  v.setUint32(p + 20, r.s0, false); v.setUint32(p + 24, r.s1, false);
  p += 28;
  if (r.traceState) { w.pos = p; w.byte(T.span_trace_state); w.string(r.traceState); w.ensure(64 + (nf ? nf.n : 0)); v = w.view; p = w.pos; }
  const hasParent = (r.p0 | r.p1) !== 0;
  if (hasParent) {
    v.setUint16(p, T.span_parent_span_id | (8 << 8), true);
    v.setUint32(p + 2, r.p0, false); v.setUint32(p + 6, r.p1, false);
    p += 10;
  }
  if (nf) p = putWords(v, p, nf);
  else { w.pos = p; w.byte(T.span_name); w.string(r.name); w.ensure(64); v = w.view; p = w.pos; }
  v.setUint16(p, T.span_kind | (r.kind << 8), true);
  v.setUint8(p + 2, T.span_start); v.setUint32(p + 3, r.startLo, true); v.setUint32(p + 7, r.startHi, true);
  v.setUint8(p + 11, T.span_end); v.setUint32(p + 12, r.endLo, true); v.setUint32(p + 16, r.endHi, true);
  p += 20;
  w.pos = p;

  const a = r.attrs;
  const na = r.nAttrs * 3;
  for (let i = 0; i < na; i += 3) {
    const tag = a[i];
    const key = tag >>> 3;
    const x = a[i + 1];
    switch (tag & 7) {
      case AttrType.SET: {
        const sw = setWords(r.sets[x]);
        w.ensure(sw.n + 4);
        w.pos = putWords(w.view, w.pos, sw);
        break;
      }
      case AttrType.STRING: {
        const s = r.strs[x];
        const c = cachedStringWords(key, s);
        if (c) { w.ensure(c.n + 4); w.pos = putWords(w.view, w.pos, c); break; }
        slowAttr(w, key, AttrType.STRING, 0, 0, s, undefined);
        break;
      }
      case AttrType.BYTES_ASCII:
      case AttrType.BYTES_UTF8: {
        const src = r.src!;
        const sv = r.srcView ?? (r.srcView = new DataView(src.buffer, src.byteOffset, src.length));
        const end = a[i + 2];
        const kf = keyFieldWords(key);
        const n = end - x;
        const kv = kf.n + 4 + n; // key field, value tag + len, AnyValue tag + len, bytes
        if (kv < 128) {
          // Every length fits one byte, unless invalid UTF-8 must be replaced (the slow path does that).
          let ascii = (tag & 7) === AttrType.BYTES_ASCII;
          if (!ascii) {
            let high = 0;
            let j = x;
            for (; j + 4 <= end; j += 4) high |= sv.getUint32(j, true);
            for (; j < end; j++) high |= sv.getUint8(j);
            ascii = (high & 0x80808080) === 0;
          }
          if (ascii) {
            w.ensure(2 + kv + 4);
            const o = w.view;
            let q = w.pos;
            o.setUint16(q, T.span_attributes | (kv << 8), true);
            q = putWords(o, q + 2, kf);
            o.setUint32(q, T.kv_value | ((n + 2) << 8) | (T.av_string << 16) | (n << 24), true);
            copyView(o, q + 4, sv, x, n);
            w.pos = q + 4 + n;
            break;
          }
        }
        slowAttr(w, key, AttrType.BYTES_UTF8, x, end, '', src);
        break;
      }
      case AttrType.INT: {
        const c = cachedIntWords(key, x);
        if (c) { w.ensure(c.n + 4); w.pos = putWords(w.view, w.pos, c); break; }
        slowAttr(w, key, AttrType.INT, x, 0, '', undefined);
        break;
      }
      case AttrType.BOOL:
        slowAttr(w, key, AttrType.BOOL, x, 0, '', undefined);
        break;
      default:
        slowAttr(w, key, AttrType.DOUBLE, x, 0, '', undefined);
    }
  }

  // Status: always present, as the official exporter writes it (empty for UNSET).
  w.ensure(16);
  v = w.view;
  p = w.pos;
  if (r.statusMessage) {
    w.byte(T.span_status);
    const m = w.beginLen(1);
    w.byte(T.status_message); w.string(r.statusMessage);
    if (r.statusCode !== 0) { w.byte(T.status_code); w.byte(r.statusCode); }
    w.endLen(m);
    w.ensure(16);
    v = w.view;
    p = w.pos;
  } else if (r.statusCode !== 0) {
    v.setUint32(p, T.span_status | (2 << 8) | (T.status_code << 16) | (r.statusCode << 24), true);
    p += 4;
  } else {
    v.setUint16(p, T.span_status, true);
    p += 2;
  }
  const flags = (r.flags & 0xff) | FLAG_HAS_IS_REMOTE | (hasParent && r.parentRemote ? FLAG_IS_REMOTE : 0);
  v.setUint16(p, SPAN_FLAGS_TAG0 | (SPAN_FLAGS_TAG1 << 8), true);
  v.setUint32(p + 2, flags, true);
  w.pos = p + 6;
}

/**
 * An attribute through the writer's checked methods (values that are not
 * cached or short): no closures here, so encodeSpan's locals stay in registers.
 */
function slowAttr(w: ProtoWriter, key: number, type: number, x: number, end: number, s: string, src: Uint8Array | undefined): void {
  w.byte(T.span_attributes);
  const m = w.beginLen(2);
  w.raw(keyField(key));
  w.byte(T.kv_value);
  const mv = w.beginLen(1);
  switch (type) {
    case AttrType.STRING: w.byte(T.av_string); w.string(s); break;
    case AttrType.BYTES_UTF8: w.byte(T.av_string); w.utf8Bytes(src!, x, end); break;
    case AttrType.INT: w.byte(T.av_int); w.int64(x); break;
    case AttrType.BOOL: w.byte(T.av_bool); w.byte(x ? 1 : 0); break;
    default: w.byte(T.av_double); w.double(x);
  }
  w.endLen(mv);
  w.endLen(m);
}

// ---------------------------------------------------------------- batches

interface ScopeGroup {
  scope: Buffer;
  /** Repeated ScopeSpans.spans fields (tag, length, Span). */
  spans: ProtoWriter;
}

interface ResourceGroup {
  resource: Buffer;
  scopes: Map<string, ScopeGroup>;
}

/**
 * Encoded Resource messages per process. A process's resource object may be
 * replaced by an equal one (re-read after a restart of the agent's tracking):
 * equal attributes keep the same encoding, so its spans stay in one group.
 */
const resourceCache = new Map<number, { src: ProcessResource; bytes: Buffer }>();
const scopeCache = new Map<string, Buffer>();

function encodedResource(r: ProcessResource): Buffer {
  const hit = resourceCache.get(r.pid);
  if (hit && (hit.src === r || sameAttributes(hit.src.attributes, r.attributes))) {
    hit.src = r;
    return hit.bytes;
  }
  if (!hit && resourceCache.size >= 4096) resourceCache.delete(resourceCache.keys().next().value as number);
  const bytes = encodeResource(r.attributes);
  resourceCache.set(r.pid, { src: r, bytes });
  return bytes;
}

function sameAttributes(a: Attributes, b: Attributes): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/**
 * Spans of one future export request, grouped by resource and scope as OTLP
 * wants them. add() encodes the span right away; finish() returns the request
 * bytes and empties the batch (its buffers are reused).
 */
export class SpanBatchEncoder {
  /** By encoded resource (one per distinct resource). */
  private groups = new Map<Buffer, ResourceGroup>();
  private free: ProtoWriter[] = [];
  /** Spans in the batch. */
  count = 0;
  /** Bytes of encoded spans in the batch (the request is a little larger). */
  bytes = 0;

  constructor(private readonly scopeVersion: string) {}

  private lastResource: ProcessResource | undefined;
  private lastScope = '';
  private lastGroup: ScopeGroup | undefined;

  add(rec: SpanRecord, resource: ProcessResource): void {
    // Consecutive spans mostly share process and scope: skip the lookups.
    const sg0 = this.lastGroup;
    if (sg0 && resource === this.lastResource && rec.scope === this.lastScope) { this.append(sg0, rec); return; }
    const res = encodedResource(resource);
    let g = this.groups.get(res);
    if (!g) {
      g = { resource: res, scopes: new Map() };
      this.groups.set(res, g);
    }
    let sg = g.scopes.get(rec.scope);
    if (!sg) {
      let sc = scopeCache.get(rec.scope);
      if (!sc) scopeCache.set(rec.scope, (sc = encodeScope(rec.scope, this.scopeVersion)));
      const w = this.free.pop() ?? new ProtoWriter(16 * 1024);
      w.reset();
      sg = { scope: sc, spans: w };
      g.scopes.set(rec.scope, sg);
    }
    this.lastResource = resource;
    this.lastScope = rec.scope;
    this.lastGroup = sg;
    this.append(sg, rec);
  }

  private append(sg: ScopeGroup, rec: SpanRecord): void {
    const w = sg.spans;
    const before = w.pos;
    w.byte(T.ss_spans);
    const m = w.beginLen(2);
    encodeSpan(w, rec);
    w.endLen(m);
    this.count++;
    this.bytes += w.pos - before;
  }

  /** The ExportTraceServiceRequest for everything added since the last finish(). */
  finish(): Buffer {
    // Sizes first, so the request is written into one exactly sized buffer.
    let total = 0;
    const rsLens: number[] = [];
    const ssLens: number[] = [];
    for (const g of this.groups.values()) {
      let rs = 1 + varintSize(g.resource.length) + g.resource.length;
      for (const sg of g.scopes.values()) {
        const ss = 1 + varintSize(sg.scope.length) + sg.scope.length + sg.spans.pos;
        ssLens.push(ss);
        rs += 1 + varintSize(ss) + ss;
      }
      rsLens.push(rs);
      total += 1 + varintSize(rs) + rs;
    }
    const out = new ProtoWriter(total);
    let si = 0;
    let ri = 0;
    for (const g of this.groups.values()) {
      out.byte(T.req_resource_spans); out.varint(rsLens[ri++]);
      out.byte(T.rs_resource); out.varint(g.resource.length); out.raw(g.resource);
      for (const sg of g.scopes.values()) {
        out.byte(T.rs_scope_spans); out.varint(ssLens[si++]);
        out.byte(T.ss_scope); out.varint(sg.scope.length); out.raw(sg.scope);
        out.raw(sg.spans.buf.subarray(0, sg.spans.pos));
        if (this.free.length < 64 && sg.spans.buf.length <= 4 << 20) this.free.push(sg.spans);
      }
    }
    this.groups.clear();
    this.lastGroup = undefined;
    this.lastResource = undefined;
    this.count = 0;
    this.bytes = 0;
    return out.buf.subarray(0, out.pos);
  }
}

// ---------------------------------------------------------------- reading our own requests back

/** Splits an ExportTraceServiceRequest we encoded into two with about half the spans each (a collector said it is too large). */
export function splitRequest(req: Buffer): [Buffer, Buffer] | undefined {
  interface Scope { scope: Buffer; spans: Buffer[] }
  interface Res { resource: Buffer; scopes: Scope[] }
  const resources: Res[] = [];
  let total = 0;
  for (const [f, rs] of fields(req)) {
    if (f !== 1) continue;
    const r: Res = { resource: Buffer.alloc(0), scopes: [] };
    for (const [g, v] of fields(rs)) {
      if (g === 1) r.resource = v;
      else if (g === 2) {
        const s: Scope = { scope: Buffer.alloc(0), spans: [] };
        for (const [h, x] of fields(v)) { if (h === 1) s.scope = x; else if (h === 2) { s.spans.push(x); total++; } }
        r.scopes.push(s);
      }
    }
    resources.push(r);
  }
  if (total < 2) return undefined;
  const half = Math.ceil(total / 2);
  const parts: Res[][] = [[], []];
  let seen = 0;
  for (const r of resources) for (const s of r.scopes) for (const sp of s.spans) {
    const side = parts[seen++ < half ? 0 : 1];
    let pr = side[side.length - 1];
    if (!pr || pr.resource !== r.resource) side.push((pr = { resource: r.resource, scopes: [] }));
    let ps = pr.scopes[pr.scopes.length - 1];
    if (!ps || ps.scope !== s.scope) pr.scopes.push((ps = { scope: s.scope, spans: [] }));
    ps.spans.push(sp);
  }
  const enc = (rs: Res[]): Buffer => {
    const w = new ProtoWriter(req.length);
    for (const r of rs) {
      w.byte(T.req_resource_spans);
      const m = w.beginLen(4);
      w.byte(T.rs_resource); w.varint(r.resource.length); w.raw(r.resource);
      for (const s of r.scopes) {
        w.byte(T.rs_scope_spans);
        const ms = w.beginLen(4);
        w.byte(T.ss_scope); w.varint(s.scope.length); w.raw(s.scope);
        for (const sp of s.spans) { w.byte(T.ss_spans); w.varint(sp.length); w.raw(sp); }
        w.endLen(ms);
      }
      w.endLen(m);
    }
    return w.bytes();
  };
  return [enc(parts[0]), enc(parts[1])];
}

/** Number of spans in a request we encoded. */
export function countSpans(req: Buffer): number {
  let n = 0;
  for (const [f, rs] of fields(req)) if (f === 1) for (const [g, v] of fields(rs)) if (g === 2) for (const [h] of fields(v)) if (h === 2) n++;
  return n;
}

/** Length-delimited fields of a message (other wire types are skipped). */
export function* fields(b: Buffer): Generator<[number, Buffer]> {
  let p = 0;
  const varint = (): number => {
    let v = 0, mul = 1, c: number;
    do { c = b[p++]; v += (c & 0x7f) * mul; mul *= 128; } while (c & 0x80 && p < b.length);
    return v;
  };
  while (p < b.length) {
    const tag = varint();
    const wire = tag & 7;
    const field = Math.floor(tag / 8);
    if (wire === 2) { const n = varint(); yield [field, b.subarray(p, p + n)]; p += n; }
    else if (wire === 0) varint();
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else return;
  }
}

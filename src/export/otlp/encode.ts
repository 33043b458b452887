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
import { AttrType, attrKeyName, copyView, type SpanRecord } from '../../spans/record';
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

/** Caches of complete Span.attributes fields (tag, length, KeyValue) for low-cardinality values. */
const CACHE_PER_KEY = 512;
const stringFields: Map<string, Buffer>[] = [];
const intFields: Map<number, Buffer>[] = [];

function attributeField(key: number, v: AttributeValue): Buffer {
  const w = new ProtoWriter(64);
  w.byte(T.span_attributes);
  const m = w.beginLen(1);
  encodeKeyValue(w, attrKeyName(key), v);
  w.endLen(m);
  return w.bytes();
}

function cachedString(key: number, s: string): Buffer | undefined {
  let c = stringFields[key];
  if (!c) stringFields[key] = c = new Map();
  let b = c.get(s);
  if (b === undefined && c.size < CACHE_PER_KEY && s.length <= 64) c.set(s, (b = attributeField(key, s)));
  return b;
}

function cachedInt(key: number, v: number): Buffer | undefined {
  let c = intFields[key];
  if (!c) intFields[key] = c = new Map();
  let b = c.get(v);
  if (b === undefined && c.size < CACHE_PER_KEY) c.set(v, (b = attributeField(key, v)));
  return b;
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

const nameFields = new Map<string, Buffer>();
function nameField(name: string): Buffer | undefined {
  let b = nameFields.get(name);
  if (b === undefined && nameFields.size < 4096 && name.length <= 128) {
    const w = new ProtoWriter(64);
    w.byte(T.span_name); w.string(name);
    nameFields.set(name, (b = w.bytes()));
  }
  return b;
}

function put32be(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24; b[p + 1] = (v >>> 16) & 0xff; b[p + 2] = (v >>> 8) & 0xff; b[p + 3] = v & 0xff;
}

function put32le(b: Buffer, p: number, v: number): void {
  b[p] = v & 0xff; b[p + 1] = (v >>> 8) & 0xff; b[p + 2] = (v >>> 16) & 0xff; b[p + 3] = v >>> 24;
}

/**
 * Copies a whole pre-encoded field. TypedArray.set costs about 40 ns whatever
 * the size; a byte loop costs about 3 ns a byte here, so it wins only below
 * ~12 bytes.
 */
function put(b: Buffer, p: number, src: Buffer): number {
  const n = src.length;
  if (n <= 12) for (let i = 0; i < n; i++) b[p + i] = src[i];
  else b.set(src, p);
  return p + n;
}

/**
 * Encodes one Span message body into `w`. The fixed part and the common
 * attribute forms are written straight into the buffer after one capacity
 * check; the rare forms go through the writer's checked methods.
 */
export function encodeSpan(w: ProtoWriter, r: SpanRecord): void {
  const nf = nameField(r.name);
  // Fixed fields: ids 28 + parent 10 + kind 2 + times 18 + flags 6 + status 2 = 66.
  w.ensure(80 + (nf ? nf.length : 0));
  let b = w.buf;
  let p = w.pos;
  b[p] = T.span_trace_id; b[p + 1] = 16;
  put32be(b, p + 2, r.t0); put32be(b, p + 6, r.t1); put32be(b, p + 10, r.t2); put32be(b, p + 14, r.t3);
  b[p + 18] = T.span_span_id; b[p + 19] = 8;
  put32be(b, p + 20, r.s0); put32be(b, p + 24, r.s1);
  p += 28;
  w.pos = p;
  if (r.traceState) { w.byte(T.span_trace_state); w.string(r.traceState); w.ensure(80 + (nf ? nf.length : 0)); b = w.buf; p = w.pos; }
  const hasParent = (r.p0 | r.p1) !== 0;
  if (hasParent) {
    b[p] = T.span_parent_span_id; b[p + 1] = 8;
    put32be(b, p + 2, r.p0); put32be(b, p + 6, r.p1);
    p += 10;
  }
  if (nf) p = put(b, p, nf);
  else { w.pos = p; w.byte(T.span_name); w.string(r.name); w.ensure(64); b = w.buf; p = w.pos; }
  b[p] = T.span_kind; b[p + 1] = r.kind;
  b[p + 2] = T.span_start; put32le(b, p + 3, r.startLo); put32le(b, p + 7, r.startHi);
  b[p + 11] = T.span_end; put32le(b, p + 12, r.endLo); put32le(b, p + 16, r.endHi);
  p += 20;
  w.pos = p;

  const a = r.attrs;
  const na = r.nAttrs * 3;
  for (let i = 0; i < na; i += 3) {
    const tag = a[i];
    const key = tag >>> 3;
    const x = a[i + 1];
    switch (tag & 7) {
      case AttrType.STRING: {
        const s = r.strs[x];
        const c = cachedString(key, s);
        if (c) { w.ensure(c.length); w.pos = put(w.buf, w.pos, c); break; }
        slowAttr(w, key, AttrType.STRING, 0, 0, s, undefined);
        break;
      }
      case AttrType.BYTES_UTF8: {
        const src = r.src!;
        const sv = r.srcView ?? (r.srcView = new DataView(src.buffer, src.byteOffset, src.length));
        const end = a[i + 2];
        const kf = keyField(key);
        const n = end - x;
        const kv = kf.length + 4 + n; // key field, value tag + len, AnyValue tag + len, bytes
        if (kv < 128) {
          // Every length fits one byte, unless invalid UTF-8 must be replaced (the slow path does that).
          let high = 0;
          for (let j = x; j < end; j++) high |= src[j];
          if (high < 0x80) {
            w.ensure(2 + kv);
            const o = w.buf;
            let q = w.pos;
            o[q] = T.span_attributes; o[q + 1] = kv;
            q = put(o, q + 2, kf);
            o[q] = T.kv_value; o[q + 1] = n + 2; o[q + 2] = T.av_string; o[q + 3] = n;
            copyView(w.view, q + 4, sv, x, n);
            w.pos = q + 4 + n;
            break;
          }
        }
        slowAttr(w, key, AttrType.BYTES_UTF8, x, end, '', src);
        break;
      }
      case AttrType.INT: {
        const c = cachedInt(key, x);
        if (c) { w.ensure(c.length); w.pos = put(w.buf, w.pos, c); break; }
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
  w.ensure(8);
  b = w.buf;
  p = w.pos;
  if (r.statusMessage) {
    w.byte(T.span_status);
    const m = w.beginLen(1);
    w.byte(T.status_message); w.string(r.statusMessage);
    if (r.statusCode !== 0) { w.byte(T.status_code); w.byte(r.statusCode); }
    w.endLen(m);
    w.ensure(8);
    b = w.buf;
    p = w.pos;
  } else if (r.statusCode !== 0) {
    b[p] = T.span_status; b[p + 1] = 2; b[p + 2] = T.status_code; b[p + 3] = r.statusCode;
    p += 4;
  } else {
    b[p] = T.span_status; b[p + 1] = 0;
    p += 2;
  }
  const flags = (r.flags & 0xff) | FLAG_HAS_IS_REMOTE | (hasParent && r.parentRemote ? FLAG_IS_REMOTE : 0);
  b[p] = SPAN_FLAGS_TAG0; b[p + 1] = SPAN_FLAGS_TAG1; put32le(b, p + 2, flags);
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

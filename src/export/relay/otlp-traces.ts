// Reading and rewriting OTLP trace export requests received by the relay
// (ExportTraceServiceRequest, opentelemetry-proto trace/v1 and
// collector/trace/v1), without a generated protobuf model: the request is
// split into its fields down to each Span, the fields the relay changes
// (trace_id = 1, parent_span_id = 4) are replaced, and every other field,
// known or not, is written back byte for byte, in its order. So nothing the
// application sent is lost or reinterpreted.
//
// Strict: anything that is not well-formed protobuf of this shape (a
// truncated field, a group, a field number 0, a span whose ids have the wrong
// length) throws MalformedRequest; the relay answers 400 / INVALID_ARGUMENT
// and forwards nothing of that request.

export class MalformedRequest extends Error {}

export interface Field {
  num: number;
  wire: number;
  /** The whole field as encoded (tag included). */
  raw: Buffer;
  /** LEN fields: the payload. */
  data?: Buffer;
}

function varint(b: Buffer, p: number): [number, number] {
  let v = 0, mul = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= b.length) throw new MalformedRequest('truncated varint');
    const c = b[p++];
    v += (c & 0x7f) * mul;
    if (!(c & 0x80)) return [v, p];
    mul *= 128;
  }
  throw new MalformedRequest('varint longer than 10 bytes');
}

export function parseFields(b: Buffer): Field[] {
  const out: Field[] = [];
  let p = 0;
  while (p < b.length) {
    const start = p;
    let tag: number;
    [tag, p] = varint(b, p);
    const num = Math.floor(tag / 8), wire = tag % 8;
    if (num === 0) throw new MalformedRequest('field number 0');
    let data: Buffer | undefined;
    switch (wire) {
      case 0: [, p] = varint(b, p); break;
      case 1: p += 8; break;
      case 5: p += 4; break;
      case 2: {
        let n: number;
        [n, p] = varint(b, p);
        if (p + n > b.length) throw new MalformedRequest('length past the end of the message');
        data = b.subarray(p, p + n);
        p += n;
        break;
      }
      default: throw new MalformedRequest(`wire type ${wire}`);
    }
    if (p > b.length) throw new MalformedRequest('truncated field');
    out.push({ num, wire, raw: b.subarray(start, p), data });
  }
  return out;
}

function encodeVarint(v: number): Buffer {
  const bytes: number[] = [];
  while (v >= 0x80) { bytes.push((v % 128) | 0x80); v = Math.floor(v / 128); }
  bytes.push(v);
  return Buffer.from(bytes);
}

export function lenField(num: number, data: Buffer): Buffer {
  return Buffer.concat([encodeVarint(num * 8 + 2), encodeVarint(data.length), data]);
}

/** One span of a request, as the relay sees it. */
export interface SpanView {
  traceId: Buffer;
  spanId: Buffer;
  /** Absent or empty: a root span. */
  parentSpanId: Buffer | undefined;
  name: string;
  kind: number;
  startUnixNano: bigint;
  endUnixNano: bigint;
}

export interface SpanEdit {
  traceId?: Buffer;
  parentSpanId?: Buffer;
}

function fixed64(f: Field): bigint {
  return f.raw.readBigUInt64LE(f.raw.length - 8);
}

export function viewSpan(fields: Field[]): SpanView {
  const v: SpanView = { traceId: Buffer.alloc(0), spanId: Buffer.alloc(0), parentSpanId: undefined, name: '', kind: 0, startUnixNano: 0n, endUnixNano: 0n };
  for (const f of fields) {
    if (f.num === 1 && f.data) v.traceId = f.data;
    else if (f.num === 2 && f.data) v.spanId = f.data;
    else if (f.num === 4 && f.data) v.parentSpanId = f.data.length ? f.data : undefined;
    else if (f.num === 5 && f.data) v.name = f.data.toString('utf8');
    else if (f.num === 6 && f.wire === 0) v.kind = varint(f.raw, encodeVarint(f.num * 8).length)[0];
    else if (f.num === 7 && f.wire === 1) v.startUnixNano = fixed64(f);
    else if (f.num === 8 && f.wire === 1) v.endUnixNano = fixed64(f);
    else if ((f.num === 1 || f.num === 2 || f.num === 4 || f.num === 5) && !f.data) throw new MalformedRequest(`span field ${f.num} is not length-delimited`);
  }
  if (v.traceId.length !== 16 && v.traceId.length !== 0) throw new MalformedRequest(`span trace_id of ${v.traceId.length} bytes`);
  if (v.spanId.length !== 8 && v.spanId.length !== 0) throw new MalformedRequest(`span span_id of ${v.spanId.length} bytes`);
  if (v.parentSpanId && v.parentSpanId.length !== 8) throw new MalformedRequest(`span parent_span_id of ${v.parentSpanId.length} bytes`);
  return v;
}

function editSpan(fields: Field[], e: SpanEdit): Buffer {
  const parts: Buffer[] = [];
  let parentDone = false;
  for (const f of fields) {
    if (f.num === 1 && e.traceId) parts.push(lenField(1, e.traceId));
    else if (f.num === 4 && e.parentSpanId) { if (!parentDone) parts.push(lenField(4, e.parentSpanId)); parentDone = true; }
    else parts.push(f.raw);
  }
  if (e.parentSpanId && !parentDone) parts.push(lenField(4, e.parentSpanId));
  return Buffer.concat(parts);
}

/**
 * Walks every span of an ExportTraceServiceRequest; `visit` may return an
 * edit. Returns the request with the edits applied (the same buffer when
 * nothing changed) and the number of spans. Throws MalformedRequest.
 */
export function rewriteRequest(req: Buffer, visit: (span: SpanView) => SpanEdit | undefined): { body: Buffer; spans: number } {
  let spans = 0;
  let changed = false;
  const rsParts: Buffer[] = [];
  for (const rf of parseFields(req)) {
    if (rf.num !== 1) { rsParts.push(rf.raw); continue; }
    if (!rf.data) throw new MalformedRequest('resource_spans is not length-delimited');
    const ssParts: Buffer[] = [];
    let rsChanged = false;
    for (const sf of parseFields(rf.data)) {
      if (sf.num === 1 && sf.data) parseFields(sf.data); // the resource must parse too
      if (sf.num !== 2) { ssParts.push(sf.raw); continue; }
      if (!sf.data) throw new MalformedRequest('scope_spans is not length-delimited');
      const spParts: Buffer[] = [];
      let ssChanged = false;
      for (const pf of parseFields(sf.data)) {
        if (pf.num !== 2) { spParts.push(pf.raw); continue; }
        if (!pf.data) throw new MalformedRequest('span is not length-delimited');
        const fields = parseFields(pf.data);
        spans++;
        const edit = visit(viewSpan(fields));
        if (edit && (edit.traceId || edit.parentSpanId)) {
          spParts.push(lenField(2, editSpan(fields, edit)));
          ssChanged = true;
        } else spParts.push(pf.raw);
      }
      if (ssChanged) { ssParts.push(lenField(2, Buffer.concat(spParts))); rsChanged = true; } else ssParts.push(sf.raw);
    }
    if (rsChanged) { rsParts.push(lenField(1, Buffer.concat(ssParts))); changed = true; } else rsParts.push(rf.raw);
  }
  return { body: changed ? Buffer.concat(rsParts) : req, spans };
}

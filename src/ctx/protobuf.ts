// A minimal protobuf reader for the OTEP 4719 process-context payload:
// ProcessContext { Resource resource = 1; repeated KeyValue attributes = 2; }
// Resource { repeated KeyValue attributes = 1; }
// KeyValue { string key = 1; AnyValue value = 2; }
// AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
//            double double_value = 4; ArrayValue array_value = 5;
//            KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
// ArrayValue { repeated AnyValue values = 1; }  KeyValueList { repeated KeyValue values = 1; }
// Unknown fields are skipped, as protobuf requires.

export type AnyValue = string | boolean | bigint | number | Buffer | AnyValue[] | { [k: string]: AnyValue } | null;

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean { return this.pos >= this.buf.length; }
  varint(): bigint {
    let r = 0n, shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }
  bytes(): Buffer {
    const n = Number(this.varint());
    if (this.pos + n > this.buf.length) throw new Error('truncated field');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  *fields(): Generator<[number, number]> {
    while (!this.done) {
      const tag = Number(this.varint());
      yield [tag >>> 3, tag & 7];
    }
  }
}

function anyValue(buf: Buffer): AnyValue {
  const r = new Reader(buf);
  let v: AnyValue = null;
  for (const [f, w] of r.fields()) {
    if (f === 1 && w === 2) v = r.bytes().toString('utf8');
    else if (f === 2 && w === 0) v = r.varint() !== 0n;
    else if (f === 3 && w === 0) v = BigInt.asIntN(64, r.varint());
    else if (f === 4 && w === 1) { v = r.buf.readDoubleLE(r.pos); r.pos += 8; }
    else if (f === 5 && w === 2) v = repeated(r.bytes(), anyValue);
    else if (f === 6 && w === 2) v = Object.fromEntries(repeated(r.bytes(), keyValue));
    else if (f === 7 && w === 2) v = Buffer.from(r.bytes());
    else r.skip(w);
  }
  return v;
}

function repeated<T>(buf: Buffer, each: (b: Buffer) => T): T[] {
  const r = new Reader(buf);
  const out: T[] = [];
  for (const [f, w] of r.fields()) {
    if (f === 1 && w === 2) out.push(each(r.bytes()));
    else r.skip(w);
  }
  return out;
}

export function keyValue(buf: Buffer): [string, AnyValue] {
  const r = new Reader(buf);
  let key = '';
  let value: AnyValue = null;
  for (const [f, w] of r.fields()) {
    if (f === 1 && w === 2) key = r.bytes().toString('utf8');
    else if (f === 2 && w === 2) value = anyValue(r.bytes());
    else r.skip(w);
  }
  return [key, value];
}

export interface ProcessContextPayload {
  resource: Record<string, AnyValue>;
  attributes: Record<string, AnyValue>;
}

export function decodeProcessContext(buf: Buffer): ProcessContextPayload {
  const r = new Reader(buf);
  const out: ProcessContextPayload = { resource: {}, attributes: {} };
  for (const [f, w] of r.fields()) {
    if (f === 1 && w === 2) Object.assign(out.resource, Object.fromEntries(repeated(r.bytes(), keyValue)));
    else if (f === 2 && w === 2) { const [k, v] = keyValue(r.bytes()); out.attributes[k] = v; }
    else r.skip(w);
  }
  return out;
}

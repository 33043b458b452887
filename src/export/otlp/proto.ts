// A small protobuf writer for the export hot path: one growable buffer,
// varints, fixed-width fields, and length-delimited fields whose length is
// written after their body (a slot is reserved and the body moved if the
// length needs more bytes than reserved). Enough for OTLP; not a general
// protobuf library.
import { isUtf8 } from 'node:buffer';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export function tagBytes(field: number, wire: number): number[] {
  const out: number[] = [];
  let v = field * 8 + wire;
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}

export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) { n++; v = Math.floor(v / 128); }
  return n;
}

export class ProtoWriter {
  buf: Buffer;
  /** A DataView of exactly `buf` (offsets are the same). */
  view: DataView;
  pos = 0;

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(initial);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafeSlow(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
    this.view = new DataView(nb.buffer, nb.byteOffset, nb.length);
  }

  reset(): void {
    this.pos = 0;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** A non-negative integer below 2^53. */
  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v & 0x7f) | 0x80;
      v = v >= 0x100000000 ? Math.floor(v / 128) : v >>> 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** int64 varint: negative values take 10 bytes (two's complement). */
  int64(v: number): void {
    if (v >= 0) { this.varint(v); return; }
    this.ensure(10);
    let x = BigInt.asUintN(64, BigInt(Math.trunc(v)));
    for (let i = 0; i < 9; i++) { this.buf[this.pos++] = Number(x & 0x7fn) | 0x80; x >>= 7n; }
    this.buf[this.pos++] = Number(x);
  }

  raw(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** 32-bit words as big-endian bytes (ids). */
  u32be(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** A string's UTF-8 bytes, length first. */
  string(s: string): void {
    const n = s.length;
    if (n < 43) {
      // At most 126 bytes: the length fits one byte, write it after the body.
      this.ensure(1 + n * 3);
      const w = this.buf.write(s, this.pos + 1, 'utf8');
      this.buf[this.pos] = w;
      this.pos += 1 + w;
      return;
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /**
   * Bytes src[start..end) as a UTF-8 string field body, length first. Bytes
   * that are not valid UTF-8 (a header value in Latin-1, say) are replaced
   * with U+FFFD: a protobuf string must be UTF-8, and collectors reject the
   * whole request otherwise.
   */
  utf8Bytes(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    let high = 0;
    for (let i = start; i < end; i++) high |= src[i];
    if (high < 0x80 || isUtf8(src.subarray(start, end))) {
      this.varint(n);
      this.ensure(n);
      const b = this.buf;
      let p = this.pos;
      if (n < 48) for (let i = start; i < end; i++) b[p++] = src[i];
      else { b.set(src.subarray(start, end), p); p += n; }
      this.pos = p;
      return;
    }
    this.string(Buffer.from(src.buffer, src.byteOffset + start, n).toString('utf8'));
  }

  /** Reserves `reserve` bytes for the length of a field body that follows; returns the mark for endLen. */
  beginLen(reserve = 2): number {
    this.ensure(reserve);
    const mark = this.pos;
    this.pos += reserve;
    return mark * 8 + reserve;
  }

  /** Writes the length of the body written since beginLen (moving the body if the length needs another size). */
  endLen(mark: number): void {
    const reserve = mark & 7;
    const at = (mark - reserve) / 8;
    const bodyStart = at + reserve;
    const len = this.pos - bodyStart;
    const need = varintSize(len);
    if (need !== reserve) {
      this.ensure(need - reserve);
      this.buf.copyWithin(at + need, bodyStart, this.pos);
      this.pos += need - reserve;
    }
    let p = at;
    let v = len;
    while (v >= 0x80) { this.buf[p++] = (v & 0x7f) | 0x80; v >>>= 7; }
    this.buf[p] = v;
  }

  /** A copy of what was written. */
  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

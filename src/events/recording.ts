// Raw ring records on disk: a developer aid for replaying real traffic
// through the agent's user-space pipeline without a kernel (make
// bench-pipeline). Format: a 16-byte magic line, then per record a u32 (LE)
// length and the record's bytes, padded to 8 bytes.
import * as fs from 'node:fs';

const MAGIC = Buffer.from('otel-rust-evts1\n');

export class EventRecorder {
  private fd: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;

  constructor(file: string) {
    this.fd = fs.openSync(file, 'w', 0o600);
    fs.writeSync(this.fd, MAGIC);
  }

  add(dv: DataView, off: number, len: number): void {
    const need = 4 + ((len + 7) & ~7);
    if (this.pos + need > this.buf.length) this.flush();
    if (need > this.buf.length) return;
    this.buf.writeUInt32LE(len, this.pos);
    this.buf.set(new Uint8Array(dv.buffer, dv.byteOffset + off, len), this.pos + 4);
    this.pos += need;
  }

  flush(): void {
    if (this.pos > 0) fs.writeSync(this.fd, this.buf, 0, this.pos);
    this.pos = 0;
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }
}

/** The records of a recording, in order, as (buffer, offset, length) views into one buffer. */
export function readRecording(file: string): { data: Buffer; records: { off: number; len: number }[] } {
  const data = fs.readFileSync(file);
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${file}: not an event recording`);
  const records: { off: number; len: number }[] = [];
  let p = MAGIC.length;
  while (p + 4 <= data.length) {
    const len = data.readUInt32LE(p);
    if (p + 4 + len > data.length) break;
    records.push({ off: p + 4, len });
    p += 4 + ((len + 7) & ~7);
  }
  return { data, records };
}

// Raw ring records on disk: a developer aid for replaying real traffic
// through the agent's user-space pipeline without a kernel (make
// bench-pipeline). Format: a 16-byte magic line, then per record a u32 (LE)
// length and the record's bytes, padded to 8 bytes.
import * as fs from 'node:fs';
import { memoryTap } from '../targets/memory';

const MAGIC = Buffer.from('otel-rust-evts1\n');

export class EventRecorder {
  private fd: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;

  constructor(file: string) {
    this.fd = fs.openSync(file, 'w', 0o600);
    fs.writeSync(this.fd, MAGIC);
    // The process memory the agent read (route tables: once per table) goes
    // to FILE.mem, one JSON line per read, so a replay can answer the same reads.
    const memFile = `${file}.mem`;
    fs.writeFileSync(memFile, '', { mode: 0o600 });
    memoryTap.record = (addr, bytes) => fs.appendFileSync(memFile, JSON.stringify({ addr, hex: bytes.toString('hex') }) + '\n');
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
    memoryTap.record = undefined;
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

/** The process-memory reads of a recording (FILE.mem), as a lookup by (address, length); empty when there is none. */
export function readRecordedMemory(file: string): (addr: number, len: number) => Buffer | undefined {
  const reads = new Map<string, Buffer>();
  let text = '';
  try { text = fs.readFileSync(`${file}.mem`, 'utf8'); } catch { /* an older recording: no memory */ }
  for (const line of text.split('\n')) {
    if (!line) continue;
    const { addr, hex } = JSON.parse(line) as { addr: number; hex: string };
    const b = Buffer.from(hex, 'hex');
    reads.set(`${addr}:${b.length}`, b);
  }
  return (addr, len) => reads.get(`${addr}:${len}`);
}

// Function boundaries from .eh_frame: every function that can be unwound
// through (in Rust: all of them, panic=abort included, since std's backtraces
// need it and rustc keeps uwtable on x86-64 Linux) has an FDE giving its start
// address and length. A stripped binary keeps .eh_frame (it is loaded), so this
// is the list of function entries that survives strip = "symbols". An FDE start
// is a real instruction boundary: the only kind of address the agent may probe.
//
// Format: the LSB "Exception Frames" spec (DWARF CFI with GNU augmentations).
import { ElfFile, SHT_NOBITS } from './elf';

export interface FdeRange {
  /** vaddr of the first instruction. */
  start: number;
  /** vaddr just past the last byte. */
  end: number;
}

const DW_EH_PE_omit = 0xff;
const DW_EH_PE_pcrel = 0x10;
const DW_EH_PE_datarel = 0x30;

class Reader {
  constructor(readonly buf: Buffer, public pos: number, readonly base: number) {}
  u8(): number { return this.buf[this.pos++]; }
  u16(): number { const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  u32(): number { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i16(): number { const v = this.buf.readInt16LE(this.pos); this.pos += 2; return v; }
  i32(): number { const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  u64(): number { const v = this.buf.readUInt32LE(this.pos) + this.buf.readUInt32LE(this.pos + 4) * 0x1_0000_0000; this.pos += 8; return v; }
  i64(): number { const v = Number(this.buf.readBigInt64LE(this.pos)); this.pos += 8; return v; }
  uleb(): number {
    let result = 0, mul = 1, b: number;
    do { b = this.buf[this.pos++]; result += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80 && this.pos < this.buf.length);
    return result;
  }
  sleb(): number {
    let result = 0, mul = 1, b: number;
    do { b = this.buf[this.pos++]; result += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80 && this.pos < this.buf.length);
    if (b & 0x40) result -= mul;
    return result;
  }
  cstr(): string {
    const end = this.buf.indexOf(0, this.pos);
    const s = this.buf.toString('latin1', this.pos, end < 0 ? this.buf.length : end);
    this.pos = end < 0 ? this.buf.length : end + 1;
    return s;
  }
  /** A pointer in encoding `enc`; pcrel is relative to the field's own vaddr. */
  encoded(enc: number, dataBase = 0): number | undefined {
    if (enc === DW_EH_PE_omit) return undefined;
    const fieldVaddr = this.base + this.pos;
    let v: number;
    switch (enc & 0x0f) {
      case 0x00: v = this.u64(); break;
      case 0x01: v = this.uleb(); break;
      case 0x02: v = this.u16(); break;
      case 0x03: v = this.u32(); break;
      case 0x04: v = this.u64(); break;
      case 0x09: v = this.sleb(); break;
      case 0x0a: v = this.i16(); break;
      case 0x0b: v = this.i32(); break;
      case 0x0c: v = this.i64(); break;
      default: throw new Error(`unsupported pointer encoding 0x${enc.toString(16)}`);
    }
    const app = enc & 0x70;
    if (app === DW_EH_PE_pcrel) v += fieldVaddr;
    else if (app === DW_EH_PE_datarel) v += dataBase;
    else if (app !== 0) throw new Error(`unsupported pointer application 0x${app.toString(16)}`);
    return v;
  }
}

interface Cie { fdeEncoding: number; lsdaEncoding: number; hasAugData: boolean }

/**
 * Every FDE's code range, sorted by start, without duplicates or empty ranges.
 * A malformed record ends the walk (what came before is kept): the ranges only
 * name candidate entries, each of which is checked before use.
 */
export function fdeRanges(elf: ElfFile): FdeRange[] {
  const sh = elf.sectionByName('.eh_frame');
  if (!sh || sh.type === SHT_NOBITS || sh.size === 0) return [];
  const data = elf.sectionData(sh);
  const cies = new Map<number, Cie>();
  const out: FdeRange[] = [];
  let pos = 0;
  try {
    while (pos + 4 <= data.length) {
      const r = new Reader(data, pos, sh.addr);
      let length = r.u32();
      if (length === 0) break; // terminator
      if (length === 0xffffffff) length = r.u64();
      const recStart = r.pos;
      const next = recStart + length;
      if (next > data.length) break;
      const idPos = r.pos;
      const id = r.u32();
      if (id === 0) {
        cies.set(pos, parseCie(r));
      } else {
        const cie = cies.get(idPos - id);
        if (cie) {
          const start = r.encoded(cie.fdeEncoding);
          const range = r.encoded(cie.fdeEncoding & 0x0f);
          if (start !== undefined && range !== undefined && range > 0) out.push({ start, end: start + range });
        }
      }
      pos = next;
    }
  } catch { /* keep what was read */ }
  out.sort((a, b) => a.start - b.start || a.end - b.end);
  const dedup: FdeRange[] = [];
  for (const f of out) if (!dedup.length || dedup[dedup.length - 1].start !== f.start) dedup.push(f);
  return dedup;
}

function parseCie(r: Reader): Cie {
  const version = r.u8();
  const aug = r.cstr();
  if (aug.includes('eh')) r.u64();
  r.uleb(); // code alignment
  r.sleb(); // data alignment
  if (version === 1) r.u8(); else r.uleb(); // return address register
  const cie: Cie = { fdeEncoding: 0, lsdaEncoding: DW_EH_PE_omit, hasAugData: aug.startsWith('z') };
  if (cie.hasAugData) {
    const len = r.uleb();
    const end = r.pos + len;
    for (const ch of aug.slice(1)) {
      if (ch === 'R') cie.fdeEncoding = r.u8();
      else if (ch === 'L') cie.lsdaEncoding = r.u8();
      else if (ch === 'P') { const enc = r.u8(); r.encoded(enc & 0x7f); }
      else if (ch === 'S' || ch === 'B') { /* no data */ }
      else break;
    }
    r.pos = end;
  }
  return cie;
}

/** The FDE range containing `vaddr` (binary search), if any. */
export function fdeAt(ranges: FdeRange[], vaddr: number): FdeRange | undefined {
  let lo = 0, hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const f = ranges[mid];
    if (vaddr < f.start) hi = mid - 1;
    else if (vaddr >= f.end) lo = mid + 1;
    else return f;
  }
  return undefined;
}

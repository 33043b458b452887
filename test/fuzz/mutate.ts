// Deterministic mutations of a real ELF file, aimed at the structures the
// agent's readers parse: the ELF header, program and section header tables,
// symbol and string tables, notes, .comment, .eh_frame and the code around
// the probed functions. A mutation is data (offsets and bytes), so a case a
// fuzz run finds is kept in the repository as a small JSON file and replayed
// by the regression test, with no binary in git.
import * as fs from 'node:fs';

export interface Mutation {
  /** Bytes written at offsets (hex). */
  writes: { at: number; hex: string }[];
  /** Cut the file to this many bytes (after the writes). */
  truncate?: number;
}

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Region { start: number; end: number; weight: number }

const INTERESTING_SECTIONS: Record<string, number> = {
  '.symtab': 4, '.strtab': 3, '.dynsym': 2, '.dynstr': 2, '.comment': 2, '.note.gnu.build-id': 1,
  '.eh_frame': 1, '.eh_frame_hdr': 1, '.rela.dyn': 1, '.tbss': 1, '.tdata': 1, '.text': 2, '.rodata': 1,
};

/** Where to aim, from the original file's own tables. */
export function regionsOf(b: Buffer): Region[] {
  const out: Region[] = [{ start: 0, end: 64, weight: 3 }];
  const phoff = Number(b.readBigUInt64LE(0x20)), phnum = b.readUInt16LE(0x38);
  out.push({ start: phoff, end: phoff + phnum * 56, weight: 3 });
  const shoff = Number(b.readBigUInt64LE(0x28)), shnum = b.readUInt16LE(0x3c), shstrndx = b.readUInt16LE(0x3e);
  out.push({ start: shoff, end: Math.min(b.length, shoff + shnum * 64), weight: 3 });
  const strOff = Number(b.readBigUInt64LE(shoff + shstrndx * 64 + 0x18));
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * 64;
    const nameAt = strOff + b.readUInt32LE(sh);
    const name = b.toString('latin1', nameAt, b.indexOf(0, nameAt));
    const off = Number(b.readBigUInt64LE(sh + 0x18)), size = Number(b.readBigUInt64LE(sh + 0x20));
    const w = INTERESTING_SECTIONS[name] ?? (name.startsWith('.debug') ? 1 : 0);
    if (w && size > 0 && b.readUInt32LE(sh + 4) !== 8 /* NOBITS */) out.push({ start: off, end: Math.min(b.length, off + size), weight: w });
  }
  out.push({ start: 0, end: b.length, weight: 1 });
  return out;
}

const BOUNDARY = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff];

/** Mutation number `i` of a run seeded `seed`. */
export function mutation(b: Buffer, regions: Region[], seed: number, i: number): Mutation {
  const r = prng(seed * 1_000_003 + i);
  const total = regions.reduce((n, x) => n + x.weight, 0);
  const pick = () => {
    let w = r() * total;
    for (const x of regions) { if ((w -= x.weight) < 0) return x; }
    return regions[regions.length - 1];
  };
  const writes: Mutation['writes'] = [];
  const n = 1 + Math.floor(r() * 8);
  for (let k = 0; k < n; k++) {
    const reg = pick();
    const at = reg.start + Math.floor(r() * Math.max(1, reg.end - reg.start));
    const kind = r();
    let bytes: Buffer;
    if (kind < 0.4) bytes = Buffer.from([Math.floor(r() * 256)]);
    else if (kind < 0.6) bytes = Buffer.from([b[at] ^ (1 << Math.floor(r() * 8))]);
    else if (kind < 0.85) { bytes = Buffer.alloc(4); bytes.writeUInt32LE(BOUNDARY[Math.floor(r() * BOUNDARY.length)] >>> 0); }
    else { bytes = Buffer.alloc(8); bytes.writeBigUInt64LE(r() < 0.5 ? 0xffffffffffffffffn : BigInt(Math.floor(r() * 2 ** 40))); }
    writes.push({ at, hex: bytes.toString('hex') });
  }
  const m: Mutation = { writes };
  if (r() < 0.1) m.truncate = Math.floor(r() * b.length);
  return m;
}

export function apply(original: Buffer, m: Mutation): Buffer {
  const b = Buffer.from(original);
  for (const w of m.writes) {
    const bytes = Buffer.from(w.hex, 'hex');
    if (w.at < b.length) bytes.copy(b, w.at, 0, Math.min(bytes.length, b.length - w.at));
  }
  return m.truncate !== undefined ? b.subarray(0, m.truncate) : b;
}

export function writeMutated(original: Buffer, m: Mutation, file: string): void {
  fs.writeFileSync(file, apply(original, m), { mode: 0o755 });
}

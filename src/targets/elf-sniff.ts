// A cheap first look at an executable during discovery: is it a 64-bit
// little-endian ELF that rustc built? Reads the ELF header, the section
// headers and `.comment` (a few KiB) instead of the whole file, so scanning a
// host with hundreds of distinct executables stays cheap; only files that pass
// get the full analysis (src/binary) and a plan.
//
// rustc's LLVM writes "rustc version 1.x.y (...)" into `.comment`; strip and
// cargo's strip = "symbols" keep it. An executable whose `.comment` was
// removed is not discovered (name it with --exe or --pid instead).
import * as fs from 'node:fs';

const SHT_NOBITS = 8;
const MAX_COMMENT = 64 << 10;
const MAX_SHSTRTAB = 1 << 20;

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = fs.readSync(fd, b, 0, len, pos);
  return n === len ? b : b.subarray(0, n);
}

export type Sniff = { rust: true } | { rust: false; why: string };

export function sniffRustElf(fd: number): Sniff {
  const eh = readAt(fd, 0, 64);
  if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) return { rust: false, why: 'not an ELF file' };
  if (eh[4] !== 2 || eh[5] !== 1) return { rust: false, why: 'not a 64-bit little-endian ELF file' };
  const shoff = Number(eh.readBigUInt64LE(40));
  const shentsize = eh.readUInt16LE(58);
  const shnum = eh.readUInt16LE(60);
  const shstrndx = eh.readUInt16LE(62);
  if (shoff === 0 || shnum === 0 || shentsize < 64 || shstrndx >= shnum) return { rust: false, why: 'no section headers' };
  const sh = readAt(fd, shoff, shnum * shentsize);
  if (sh.length < shnum * shentsize) return { rust: false, why: 'truncated section headers' };
  const sec = (i: number) => {
    const o = i * shentsize;
    return { name: sh.readUInt32LE(o), type: sh.readUInt32LE(o + 4), offset: Number(sh.readBigUInt64LE(o + 24)), size: Number(sh.readBigUInt64LE(o + 32)) };
  };
  const strtab = sec(shstrndx);
  const names = readAt(fd, strtab.offset, Math.min(strtab.size, MAX_SHSTRTAB));
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    if (s.type === SHT_NOBITS) continue;
    const end = names.indexOf(0, s.name);
    if (names.toString('latin1', s.name, end < 0 ? names.length : end) !== '.comment') continue;
    const comment = readAt(fd, s.offset, Math.min(s.size, MAX_COMMENT));
    return comment.includes('rustc version') ? { rust: true } : { rust: false, why: 'not built by rustc (.comment)' };
  }
  return { rust: false, why: 'no .comment section (no rustc marker)' };
}

// A cheap first look at an executable during discovery: is it a 64-bit
// little-endian ELF that rustc built? Reads the ELF header, the section
// headers and `.comment` (a few KiB) instead of the whole file, so scanning a
// host with hundreds of distinct executables stays cheap; only files that pass
// get the full analysis (src/binary) and a plan.
//
// rustc's LLVM writes "rustc version 1.x.y (...)" into `.comment`; strip and
// cargo's strip = "symbols" keep it, Debian's packaging removes it (then
// Rust's runtime symbols tell).
//
// Then the symbol names: a library's functions are named after its crate,
// which both Rust manglings spell as <length><name> ("5hyper"), so a file
// whose string tables hold none of the supported crates' names cannot have
// their symbols, and the full analysis (which demangles every symbol, about a
// second for a large binary) is skipped.
import * as fs from 'node:fs';

const SHT_NOBITS = 8;
const MAX_COMMENT = 64 << 10;
const MAX_SHSTRTAB = 1 << 20;

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = fs.readSync(fd, b, 0, len, pos);
  return n === len ? b : b.subarray(0, n);
}

export type Sniff = { rust: true; crates: string[] } | { rust: false; why: string };

const SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_DYNSYM = 11;
const MAX_STRTAB = 512 << 20;
// Names only Rust's runtime defines: the unwinding personality, and the
// allocator and panic shims (plain C names before rustc 1.9x, v0-mangled in
// the "___rustc" crate since).
const RUST_RUNTIME = ['rust_eh_personality', '7___rustc', '\0rust_panic\0', '\0rust_begin_unwind\0', '\0__rust_alloc\0'].map((s) => Buffer.from(s));

/** `crates`: the crates whose names a candidate's symbols must mention (one is enough). */
export function sniffRustElf(fd: number, crates: string[]): Sniff {
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
  const nameOf = (i: number) => {
    const n = sec(i).name;
    const end = names.indexOf(0, n);
    return names.toString('latin1', n, end < 0 ? names.length : end);
  };
  // .comment, when there is one, says who compiled the objects (the linker
  // merges every object's): without rustc among them, not Rust.
  let comment: 'rustc' | 'other' | 'none' = 'none';
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    if (s.type === SHT_NOBITS || nameOf(i) !== '.comment') continue;
    comment = readAt(fd, s.offset, Math.min(s.size, MAX_COMMENT)).includes('rustc version') ? 'rustc' : 'other';
  }
  if (comment === 'other') return { rust: false, why: 'not built by rustc (.comment)' };
  // The string tables the symbol tables name (.strtab, .dynstr). Debian's
  // packaging strips .comment: then Rust's runtime symbols tell.
  const wanted = crates.map((c) => Buffer.from(`${c.length}${c}`));
  const found = new Set<string>();
  let runtime = false;
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    if (s.type !== SHT_SYMTAB && s.type !== SHT_DYNSYM) continue;
    const link = sh.readUInt32LE(i * shentsize + 40);
    if (link >= shnum || sec(link).type !== SHT_STRTAB) continue;
    const str = sec(link);
    const data = readAt(fd, str.offset, Math.min(str.size, MAX_STRTAB));
    wanted.forEach((w, j) => { if (data.includes(w)) found.add(crates[j]); });
    runtime ||= RUST_RUNTIME.some((r) => data.includes(r));
  }
  if (comment === 'none' && !runtime) return { rust: false, why: 'no rustc marker (.comment) and no Rust runtime symbols' };
  if (found.size === 0) return { rust: false, why: `a Rust executable whose symbols name none of the supported crates (${[...new Set(crates)].join(', ')})` };
  return { rust: true, crates: [...found] };
}

// A small ELF64 little-endian reader: just what the agent needs to find
// functions, map addresses to file offsets (uprobes are attached by file
// offset) and read the metadata rustc leaves in a binary. Only x86-64 Linux
// executables are targets, so 32-bit and big-endian files are rejected up front.

import { isAscii } from 'node:buffer';
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { EXIT, UserError } from '../util/errors';

export class BinaryError extends UserError {
  constructor(message: string) {
    super(message, EXIT.TARGET);
    this.name = 'BinaryError';
  }
}

export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PT_TLS = 7;
export const PF_X = 1;

export const SHT_SYMTAB = 2;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const SHF_COMPRESSED = 0x800;

export const STT_FUNC = 2;
export const STT_GNU_IFUNC = 10;
export const SHN_UNDEF = 0;

const NT_GNU_BUILD_ID = 3;
const ELFCOMPRESS_ZLIB = 1;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const CHDR_SIZE = 24;

export interface ElfHeader {
  type: number;      // ET_EXEC, ET_DYN, ...
  machine: number;   // EM_X86_64, ...
  entry: number;
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface SectionHeader {
  index: number;
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  type: number;      // STT_* (low nibble of st_info)
  bind: number;      // STB_* (high nibble of st_info)
  shndx: number;
  table: 'symtab' | 'dynsym';
}

export interface ElfRelocation {
  /** r_offset: the vaddr the relocation patches (a GOT slot for TLS ones). */
  offset: number;
  type: number;
  symIndex: number;
  symbol: string;
  addend: bigint;
}

export const SHT_RELA = 4;
export const STT_TLS = 6;
export const R_X86_64_DTPMOD64 = 16;
export const R_X86_64_DTPOFF64 = 17;
export const R_X86_64_TPOFF64 = 18;
export const R_X86_64_TLSDESC = 36;
const RELA_SIZE = 24;

export interface ElfNote {
  name: string;
  type: number;
  desc: Buffer;
}

// 64-bit fields are read as two halves: addresses and sizes of real binaries
// fit in 2^53, and this avoids a BigInt per field (symbol tables have 100k+ rows).
function u64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export class ElfFile {
  readonly header: ElfHeader;
  readonly programHeaders: ProgramHeader[];
  readonly sections: SectionHeader[];
  private symbolCache: ElfSymbol[] | undefined;

  static open(path: string): ElfFile {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BinaryError(`${path}: cannot read file (${code ?? (e as Error).message})`);
    }
    return new ElfFile(buf, path);
  }

  static fromBuffer(buf: Buffer, path: string): ElfFile {
    return new ElfFile(buf, path);
  }

  private constructor(readonly buf: Buffer, readonly path: string) {
    if (buf.length < 4 || buf.readUInt32BE(0) !== 0x7f454c46) throw this.error('not an ELF file');
    if (buf.length < EHDR_SIZE) throw this.error('truncated ELF file (ELF header past end of file)');
    if (buf[4] !== 2) throw this.error('32-bit ELF files are not supported (only x86-64)');
    if (buf[5] !== 1) throw this.error('big-endian ELF files are not supported (only x86-64)');
    this.header = { type: buf.readUInt16LE(16), machine: buf.readUInt16LE(18), entry: u64(buf, 24) };
    this.programHeaders = this.readProgramHeaders();
    this.sections = this.readSections();
  }

  private error(what: string): BinaryError {
    return new BinaryError(`${this.path}: ${what}`);
  }

  private checkRange(offset: number, size: number, what: string): void {
    if (offset + size > this.buf.length) throw this.error(`truncated ELF file (${what} past end of file)`);
  }

  private readProgramHeaders(): ProgramHeader[] {
    const b = this.buf;
    const phoff = u64(b, 32);
    const phentsize = b.readUInt16LE(54);
    const phnum = b.readUInt16LE(56);
    if (phnum === 0) return [];
    if (phentsize < PHDR_SIZE) throw this.error(`bad program header size ${phentsize}`);
    this.checkRange(phoff, phnum * phentsize, 'program headers');
    const out: ProgramHeader[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * phentsize;
      const ph: ProgramHeader = {
        type: b.readUInt32LE(o), flags: b.readUInt32LE(o + 4), offset: u64(b, o + 8), vaddr: u64(b, o + 16),
        filesz: u64(b, o + 32), memsz: u64(b, o + 40), align: u64(b, o + 48),
      };
      if (ph.type === PT_LOAD) this.checkRange(ph.offset, ph.filesz, `segment ${i}`);
      out.push(ph);
    }
    return out;
  }

  private readSections(): SectionHeader[] {
    const b = this.buf;
    const shoff = u64(b, 40);
    const shentsize = b.readUInt16LE(58);
    let shnum = b.readUInt16LE(60);
    let shstrndx = b.readUInt16LE(62);
    if (shoff === 0) return [];
    if (shentsize < SHDR_SIZE) throw this.error(`bad section header size ${shentsize}`);
    this.checkRange(shoff, SHDR_SIZE, 'section headers');
    // Extended numbering: with 0xff00+ sections the real counts live in section 0.
    if (shnum === 0) shnum = u64(b, shoff + 32);
    if (shstrndx === 0xffff) shstrndx = b.readUInt32LE(shoff + 40);
    this.checkRange(shoff, shnum * shentsize, 'section headers');
    const out: SectionHeader[] = [];
    const nameOffsets: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      const sh: SectionHeader = {
        index: i, name: '', type: b.readUInt32LE(o + 4), flags: u64(b, o + 8), addr: u64(b, o + 16),
        offset: u64(b, o + 24), size: u64(b, o + 32), link: b.readUInt32LE(o + 40), info: b.readUInt32LE(o + 44),
        addralign: u64(b, o + 48), entsize: u64(b, o + 56),
      };
      if (sh.type !== SHT_NOBITS) this.checkRange(sh.offset, sh.size, `section ${i}`);
      out.push(sh);
      nameOffsets.push(b.readUInt32LE(o));
    }
    const names = out[shstrndx];
    if (names) {
      for (const sh of out) sh.name = this.cString(names.offset + nameOffsets[sh.index], names.offset + names.size);
    }
    return out;
  }

  private cString(start: number, limit: number): string {
    let end = this.buf.indexOf(0, start);
    if (end < 0 || end > limit) end = limit;
    return this.buf.toString('utf8', start, end);
  }

  sectionByName(name: string): SectionHeader | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Section contents, inflated if the section is SHF_COMPRESSED (zlib only). */
  sectionData(sh: SectionHeader): Buffer {
    if (sh.type === SHT_NOBITS) return Buffer.alloc(0);
    const raw = this.buf.subarray(sh.offset, sh.offset + sh.size);
    if (!(sh.flags & SHF_COMPRESSED)) return raw;
    if (raw.length < CHDR_SIZE) throw this.error(`section ${sh.name}: truncated compression header`);
    const chType = raw.readUInt32LE(0);
    // zstd (type 2) would need Node >= 22.15; rustc/ld only use it when asked.
    if (chType !== ELFCOMPRESS_ZLIB) throw this.error(`section ${sh.name}: unsupported compression type ${chType}`);
    try {
      return zlib.inflateSync(raw.subarray(CHDR_SIZE));
    } catch (e) {
      throw this.error(`section ${sh.name}: corrupt compressed data (${(e as Error).message})`);
    }
  }

  /** All symbols of .symtab then .dynsym, parsed on first use and cached. */
  symbols(): ElfSymbol[] {
    if (!this.symbolCache) {
      this.symbolCache = [];
      for (const sh of this.sections) {
        if (sh.type === SHT_SYMTAB) this.readSymbolTable(sh, 'symtab', this.symbolCache);
        else if (sh.type === SHT_DYNSYM) this.readSymbolTable(sh, 'dynsym', this.symbolCache);
      }
    }
    return this.symbolCache;
  }

  /**
   * Relocations of the allocated SHT_RELA sections (.rela.dyn, .rela.plt), with
   * the name of the .dynsym symbol each one refers to ('' for symbol index 0).
   * Used to tell how a TLS variable is accessed (TLSDESC, TPOFF64, DTPMOD64).
   */
  dynamicRelocations(): ElfRelocation[] {
    const out: ElfRelocation[] = [];
    for (const sh of this.sections) {
      if (sh.type !== SHT_RELA || !(sh.flags & SHF_ALLOC) || sh.size === 0) continue;
      const symtab = this.sections[sh.link];
      const names = symtab && symtab.type === SHT_DYNSYM ? this.symbolNamesByIndex(symtab) : [];
      const data = this.sectionData(sh);
      for (let off = 0; off + RELA_SIZE <= data.length; off += RELA_SIZE) {
        const info = data.readBigUInt64LE(off + 8);
        const symIndex = Number(info >> 32n);
        out.push({
          offset: u64(data, off),
          type: Number(info & 0xffffffffn),
          symIndex,
          symbol: names[symIndex] ?? '',
          addend: data.readBigInt64LE(off + 16),
        });
      }
    }
    return out;
  }

  private symbolNamesByIndex(sh: SectionHeader): string[] {
    const strtab = this.sections[sh.link];
    if (!strtab) return [];
    const names: string[] = [];
    for (let off = sh.offset; off + SYM_SIZE <= sh.offset + sh.size; off += SYM_SIZE) {
      const nameOff = this.buf.readUInt32LE(off);
      const start = strtab.offset + nameOff;
      const end = this.buf.indexOf(0, start);
      names.push(this.buf.toString('utf8', start, end < 0 ? start : end));
    }
    return names;
  }

  hasSymtab(): boolean {
    return this.sections.some((s) => s.type === SHT_SYMTAB);
  }

  private readSymbolTable(sh: SectionHeader, table: ElfSymbol['table'], out: ElfSymbol[]): void {
    const b = this.buf;
    const strtab = this.sections[sh.link];
    if (!strtab) throw this.error(`section ${sh.name}: bad string table link ${sh.link}`);
    // Names are sliced out of one latin1 decode of the whole string table: far
    // cheaper than a native decode per symbol (big binaries have 100k+ symbols).
    // Symbol names are ASCII in practice; if not, those names are decoded as UTF-8.
    const strings = b.toString('latin1', strtab.offset, strtab.offset + strtab.size);
    const ascii = isAscii(b.subarray(strtab.offset, strtab.offset + strtab.size));
    const nameAt = (off: number): string => {
      let end = strings.indexOf('\0', off);
      if (end < 0) end = strings.length;
      return ascii ? strings.slice(off, end) : b.toString('utf8', strtab.offset + off, strtab.offset + end);
    };
    const count = Math.floor(sh.size / SYM_SIZE);
    // Entry 0 is the reserved null symbol.
    for (let i = 1; i < count; i++) {
      const o = sh.offset + i * SYM_SIZE;
      const info = b[o + 4];
      out.push({
        name: nameAt(b.readUInt32LE(o)),
        value: u64(b, o + 8),
        size: u64(b, o + 16),
        type: info & 0xf,
        bind: info >> 4,
        shndx: b.readUInt16LE(o + 6),
        table,
      });
    }
  }

  /** Notes from PT_NOTE segments, or from SHT_NOTE sections if there are no segments. */
  notes(): ElfNote[] {
    const out: ElfNote[] = [];
    const segs = this.programHeaders.filter((p) => p.type === PT_NOTE);
    if (segs.length > 0) {
      for (const p of segs) this.readNotes(this.buf.subarray(p.offset, p.offset + p.filesz), p.align, out);
    } else {
      for (const s of this.sections) if (s.type === SHT_NOTE) this.readNotes(this.sectionData(s), s.addralign, out);
    }
    return out;
  }

  private readNotes(data: Buffer, align: number, out: ElfNote[]): void {
    // Notes are 4-byte aligned, except 8-aligned segments (e.g. .note.gnu.property).
    const a = align === 8 ? 8 : 4;
    // Arithmetic, not bit operations: sizes are u32, and (n + 3) & ~3 of a
    // size near 2^32 is a negative int32 (a corrupt note made reads go negative).
    const pad = (n: number) => Math.ceil(n / a) * a;
    let o = 0;
    while (o + 12 <= data.length) {
      const namesz = data.readUInt32LE(o);
      const descsz = data.readUInt32LE(o + 4);
      const type = data.readUInt32LE(o + 8);
      const nameStart = o + 12;
      const descStart = nameStart + pad(namesz);
      if (descStart > data.length || descStart + descsz > data.length) break;
      const name = data.toString('latin1', nameStart, nameStart + Math.max(0, namesz - 1));
      out.push({ name, type, desc: data.subarray(descStart, descStart + descsz) });
      o = descStart + pad(descsz);
    }
  }

  /** GNU build-id as lowercase hex, or null: many Rust binaries (e.g. cargo) have none. */
  buildId(): string | null {
    const n = this.notes().find((x) => x.name === 'GNU' && x.type === NT_GNU_BUILD_ID);
    return n ? n.desc.toString('hex') : null;
  }

  /** The NUL-separated strings of .comment (compiler and linker identification). */
  comment(): string[] {
    const sh = this.sectionByName('.comment');
    if (!sh) return [];
    return this.sectionData(sh).toString('utf8').split('\0').filter((s) => s.length > 0);
  }

  tlsSegment(): ProgramHeader | undefined {
    return this.programHeaders.find((p) => p.type === PT_TLS);
  }

  /** The PT_LOAD whose file-backed part contains `vaddr`, if any. */
  loadSegmentAt(vaddr: number): ProgramHeader | undefined {
    return this.programHeaders.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
  }

  private requireLoadSegment(vaddr: number): ProgramHeader {
    const seg = this.loadSegmentAt(vaddr);
    if (!seg) throw this.error(`address 0x${vaddr.toString(16)} is not in any file-backed PT_LOAD segment`);
    return seg;
  }

  /** The file offset the kernel maps at `vaddr` (uprobes are attached by file offset). */
  vaddrToFileOffset(vaddr: number): number {
    const seg = this.requireLoadSegment(vaddr);
    return vaddr - seg.vaddr + seg.offset;
  }

  readAtVaddr(vaddr: number, len: number): Buffer {
    const seg = this.requireLoadSegment(vaddr);
    if (vaddr + len > seg.vaddr + seg.filesz) {
      throw this.error(`range 0x${vaddr.toString(16)}+${len} crosses the end of its segment`);
    }
    const off = vaddr - seg.vaddr + seg.offset;
    return this.buf.subarray(off, off + len);
  }
}

// What a stripped binary still says about its functions: the panic locations
// rustc emits (`core::panic::Location { file: &str, line: u32, col: u32 }`,
// one per call site that can panic, in read-only data) and the instructions
// that load their addresses. A Location names the crate version (its file is
// `…/<crate>-<version>/src/…`), the source file and the line, and the code
// that references it is the function the panic site was compiled into.
import { ElfFile, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_RELA } from './elf';
import { loadIced } from './iced';

export interface PanicLocation {
  /** vaddr of the Location record. */
  vaddr: number;
  file: string;
  line: number;
  col: number;
}

export interface CodeRef {
  /** vaddr of the instruction. */
  at: number;
  /** vaddr it loads (rip-relative). */
  target: number;
}

const R_X86_64_RELATIVE = 8;
const R_X86_64_64 = 1;
const LOCATION_SIZE = 24;

/** Pointer words of the loaded data: what each 8-byte slot holds at run time
 * (relocated value for PIE binaries, whose pointers are RELATIVE relocations). */
function relocatedWords(elf: ElfFile): Map<number, number> {
  const out = new Map<number, number>();
  for (const sh of elf.sections) {
    if (sh.type !== SHT_RELA || !(sh.flags & SHF_ALLOC)) continue;
    const data = elf.sectionData(sh);
    for (let off = 0; off + 24 <= data.length; off += 24) {
      const type = data.readUInt32LE(off + 8);
      if (type !== R_X86_64_RELATIVE && type !== R_X86_64_64) continue;
      if (data.readUInt32LE(off + 12) !== 0) continue; // symbol-relative: not a plain address
      const where = data.readUInt32LE(off) + data.readUInt32LE(off + 4) * 0x1_0000_0000;
      out.set(where, Number(data.readBigInt64LE(off + 16)));
    }
  }
  return out;
}

/**
 * Panic locations whose file ends with one of `suffixes` (e.g.
 * `hyper-1.12.0/src/proto/h1/role.rs`). A Location is a (ptr, len) pair whose
 * string ends where a wanted file name ends, followed by two u32 (line, col).
 */
export function findPanicLocations(elf: ElfFile, suffixes: string[]): PanicLocation[] {
  const ends = new Map<number, string>(); // vaddr just past a matching file name -> suffix
  const dataSections = elf.sections.filter((s) => s.flags & SHF_ALLOC && !(s.flags & SHF_EXECINSTR) && s.type !== SHT_NOBITS && s.size > 0);
  for (const sh of dataSections) {
    const data = elf.sectionData(sh);
    for (const suf of suffixes) {
      for (let at = data.indexOf(suf); at >= 0; at = data.indexOf(suf, at + 1)) ends.set(sh.addr + at + suf.length, suf);
    }
  }
  if (ends.size === 0) return [];
  const relocated = relocatedWords(elf);
  const out: PanicLocation[] = [];
  for (const sh of dataSections) {
    const data = elf.sectionData(sh);
    for (let off = (8 - (sh.addr % 8)) % 8; off + LOCATION_SIZE <= data.length; off += 8) {
      const vaddr = sh.addr + off;
      const ptr = relocated.get(vaddr) ?? data.readUInt32LE(off) + data.readUInt32LE(off + 4) * 0x1_0000_0000;
      const len = data.readUInt32LE(off + 8);
      if (len === 0 || len > 4096 || data.readUInt32LE(off + 12) !== 0) continue;
      if (!ends.has(ptr + len)) continue;
      const file = readString(elf, ptr, len);
      if (file === undefined) continue;
      out.push({ vaddr, file, line: data.readUInt32LE(off + 16), col: data.readUInt32LE(off + 20) });
    }
  }
  return out;
}

function readString(elf: ElfFile, vaddr: number, len: number): string | undefined {
  try {
    return elf.readAtVaddr(vaddr, len).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * Instructions of the executable sections that load one of `targets` with a
 * rip-relative `lea r64, [rip + disp32]` (how rustc passes a &Location).
 * Found by a byte scan, so a hit can be a false one inside another
 * instruction: confirmRef() decodes the function to check it.
 */
export function scanLeaRefs(elf: ElfFile, targets: Set<number>): CodeRef[] {
  const out: CodeRef[] = [];
  if (targets.size === 0) return out;
  for (const sh of elf.sections) {
    if (!(sh.flags & SHF_EXECINSTR) || sh.type === SHT_NOBITS) continue;
    const code = elf.sectionData(sh);
    for (let i = 1; i + 6 <= code.length; i++) {
      if (code[i] !== 0x8d || (code[i + 1] & 0xc7) !== 0x05) continue;
      const rex = code[i - 1];
      if ((rex & 0xf8) !== 0x48) continue; // REX.W, no index/base extension needed
      const insnStart = sh.addr + i - 1;
      const target = insnStart + 7 + code.readInt32LE(i + 2);
      if (targets.has(target)) out.push({ at: insnStart, target });
    }
  }
  return out;
}

/** Decodes `[start, end)` linearly and reports whether an instruction begins at
 * `ref.at` and loads `ref.target`. LLVM keeps no data inside x86-64 functions
 * (jump tables live in .rodata), so a linear decode from a function's entry
 * follows its real instruction boundaries. */
export function confirmRefs(elf: ElfFile, start: number, end: number, refs: CodeRef[]): CodeRef[] {
  if (refs.length === 0) return [];
  const { Decoder, DecoderOptions, Instruction, Mnemonic } = loadIced();
  const want = new Map(refs.map((r) => [r.at, r]));
  const ok: CodeRef[] = [];
  const code = elf.readAtVaddr(start, end - start);
  const decoder = new Decoder(64, code, DecoderOptions.None);
  const instr = new Instruction();
  try {
    decoder.ip = BigInt(start);
    while (decoder.canDecode && want.size > 0) {
      decoder.decodeOut(instr);
      const ip = Number(instr.ip);
      const r = want.get(ip);
      if (r) {
        want.delete(ip);
        if (instr.mnemonic === Mnemonic.Lea && instr.isIpRelMemoryOperand && Number(instr.ipRelMemoryAddress) === r.target) ok.push(r);
      }
    }
  } finally {
    instr.free();
    decoder.free();
  }
  return ok;
}

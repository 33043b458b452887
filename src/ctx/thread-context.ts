// OTEP 4947 thread context, read from outside. For every loaded module that
// defines the TLS symbol `otel_thread_ctx_v1`, work out how its TLS slot is
// found from a thread pointer, then for every thread: stop it, read its fs
// base, the slot, and the record it points to.
//
// Access models (the spec requires readers to handle the first three):
//  - TLSDESC: the descriptor's GOT slot holds {resolver, argument}. For a
//    module in the static TLS block (loaded at start-up, LD_PRELOAD included)
//    glibc stores the TP offset as the argument; for a dlopen'ed module the
//    argument is a pointer to {module id, offset}, resolved through the DTV.
//  - initial-exec (R_X86_64_TPOFF64): the GOT slot holds the TP offset.
//  - local-exec (no relocation, the symbol is in the executable): the offset is
//    st_value - roundup(PT_TLS memsz, align) (x86-64 TLS variant II).
//  - general-dynamic (DTPMOD64 + DTPOFF64): module id and offset via the DTV.
import * as fs from 'node:fs';
import {
  ElfFile, ET_EXEC, STT_TLS, R_X86_64_TLSDESC, R_X86_64_TPOFF64, R_X86_64_DTPMOD64,
} from '../binary/elf';
import { RemoteMemory, withStoppedThread } from './remote';
import type { AnyValue } from './protobuf';

export const TLS_SYMBOL = 'otel_thread_ctx_v1';
const RECORD_HEADER = 28;
// glibc x86-64: tcbhead_t.dtv at TP+8; each dtv_t entry is 16 bytes.
const DTV_AT_TP = 8n;
const DTV_ENTRY = 16n;

export type TlsLocator =
  | { kind: 'static'; tpOffset: bigint; model: 'tlsdesc' | 'initial-exec' | 'local-exec' }
  | { kind: 'dynamic'; moduleId: bigint; offset: bigint; model: 'tlsdesc' | 'general-dynamic' };

export interface TlsModule {
  path: string;
  loadBias: bigint;
  locator: TlsLocator;
}

export interface ThreadRecord {
  tid: number;
  name: string;
  /** Address of the attached record, 0n when none is attached. */
  recordAddress: bigint;
  valid?: boolean;
  traceId?: string;
  spanId?: string;
  traceFlags?: number;
  attributes?: Record<string, string>;
  /** Entries whose key index is not in the key map. */
  unknownKeys?: number[];
  error?: string;
}

interface Mapping { start: bigint; offset: bigint; path: string }

function fileMappings(pid: number): Map<string, Mapping[]> {
  const out = new Map<string, Mapping[]>();
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ \S{4} ([0-9a-f]+) \S+ (\d+)\s+(\/.*)$/.exec(line);
    if (!m || m[3] === '0') continue;
    const path = m[4];
    const list = out.get(path) ?? [];
    list.push({ start: BigInt('0x' + m[1]), offset: BigInt('0x' + m[2]), path });
    out.set(path, list);
  }
  return out;
}

const MAX_ELF_SIZE = 1 << 30; // 1 GiB
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]); // \x7fELF

/**
 * Whether `file` is worth reading whole as an ELF file: a regular file of at
 * most 1 GiB that starts with the ELF magic (mapped data files, device nodes
 * and the like are skipped without being read).
 */
function isSmallElfFile(file: string): boolean {
  const st = fs.statSync(file);
  if (!st.isFile() || st.size > MAX_ELF_SIZE) return false;
  const fd = fs.openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    return fs.readSync(fd, magic, 0, 4, 0) === 4 && magic.equals(ELF_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

/** Every loaded module of `pid` defining the thread-context TLS symbol. */
export function findTlsModules(pid: number, mem: RemoteMemory): TlsModule[] {
  const mods: TlsModule[] = [];
  for (const [path, maps] of fileMappings(pid)) {
    if (path.endsWith(' (deleted)')) continue;
    let elf: ElfFile;
    try {
      // Read through /proc so a file replaced on disk still matches the mapping.
      const file = `/proc/${pid}/root${path}`;
      if (!isSmallElfFile(file)) continue;
      elf = ElfFile.open(file);
    } catch { continue; }
    const sym = elf.symbols().find((s) => s.name === TLS_SYMBOL && s.type === STT_TLS && s.size === 8 && s.shndx !== 0);
    if (!sym) continue;
    // Load bias: where the file's first segment (file offset 0) is mapped, minus its vaddr.
    const first = maps.find((m) => m.offset === 0n);
    const seg0 = elf.programHeaders.find((p) => p.type === 1 && p.offset === 0);
    if (!first || !seg0) continue;
    const loadBias = first.start - BigInt(seg0.vaddr);
    const relocs = elf.dynamicRelocations().filter((r) => r.symbol === TLS_SYMBOL);
    const locator = locate(elf, sym.value, relocs, loadBias, mem);
    if (locator) mods.push({ path, loadBias, locator });
  }
  return mods;
}

function locate(elf: ElfFile, stValue: number, relocs: ReturnType<ElfFile['dynamicRelocations']>, bias: bigint, mem: RemoteMemory): TlsLocator | undefined {
  const desc = relocs.find((r) => r.type === R_X86_64_TLSDESC);
  if (desc) {
    const arg = mem.u64(bias + BigInt(desc.offset) + 8n);
    const signed = BigInt.asIntN(64, arg);
    if (signed > 0xffffffffn) {
      // Dynamic descriptor: the argument points to a tls_index {module, offset}.
      return { kind: 'dynamic', model: 'tlsdesc', moduleId: mem.u64(arg), offset: mem.u64(arg + 8n) };
    }
    return { kind: 'static', model: 'tlsdesc', tpOffset: signed };
  }
  const ie = relocs.find((r) => r.type === R_X86_64_TPOFF64);
  if (ie) return { kind: 'static', model: 'initial-exec', tpOffset: BigInt.asIntN(64, mem.u64(bias + BigInt(ie.offset))) };
  const gd = relocs.find((r) => r.type === R_X86_64_DTPMOD64);
  if (gd) return { kind: 'dynamic', model: 'general-dynamic', moduleId: mem.u64(bias + BigInt(gd.offset)), offset: mem.u64(bias + BigInt(gd.offset) + 8n) };
  const isExecutable = elf.header.type === ET_EXEC || elf.programHeaders.some((p) => p.type === 3 /* PT_INTERP */);
  const tls = elf.tlsSegment();
  if (relocs.length === 0 && isExecutable && tls) {
    const align = BigInt(Math.max(tls.align, 1));
    const size = ((BigInt(tls.memsz) + align - 1n) / align) * align;
    return { kind: 'static', model: 'local-exec', tpOffset: BigInt(stValue) - size };
  }
  return undefined;
}

function slotAddress(loc: TlsLocator, tp: bigint, mem: RemoteMemory): bigint {
  if (loc.kind === 'static') return tp + loc.tpOffset;
  const dtv = mem.u64(tp + DTV_AT_TP);
  const block = mem.u64(dtv + loc.moduleId * DTV_ENTRY);
  if (block === 0n || block === 0xffffffffffffffffn) return 0n; // not allocated for this thread yet
  return block + loc.offset;
}

function hex(b: Buffer): string { return b.toString('hex'); }

/** Decodes packed attributes: [key index u8][len u8][value]; the last occurrence wins. */
export function decodeAttributes(data: Buffer, keys: string[]): { attributes: Record<string, string>; unknown: number[] } {
  const attributes: Record<string, string> = {};
  const unknown: number[] = [];
  let p = 0;
  while (p + 2 <= data.length) {
    const idx = data[p], len = data[p + 1];
    if (p + 2 + len > data.length) break; // truncated entry: stop
    const value = data.toString('utf8', p + 2, p + 2 + len);
    if (idx < keys.length) attributes[keys[idx]] = value;
    else unknown.push(idx);
    p += 2 + len;
  }
  return { attributes, unknown };
}

export function readThreadRecords(pid: number, mod: TlsModule, mem: RemoteMemory, keyMap: string[]): ThreadRecord[] {
  const out: ThreadRecord[] = [];
  for (const t of fs.readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b)) {
    let name = '';
    try { name = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim(); } catch { continue; }
    try {
      out.push(withStoppedThread(t, (tp) => readOne(t, name, tp, mod, mem, keyMap)));
    } catch (e) {
      if (!fs.existsSync(`/proc/${pid}/task/${t}`)) continue; // exited meanwhile
      out.push({ tid: t, name, recordAddress: 0n, error: (e as Error).message });
    }
  }
  return out;
}

function readOne(tid: number, name: string, tp: bigint, mod: TlsModule, mem: RemoteMemory, keyMap: string[]): ThreadRecord {
  const slot = slotAddress(mod.locator, tp, mem);
  const rec = slot === 0n ? 0n : mem.u64(slot);
  if (rec === 0n) return { tid, name, recordAddress: 0n };
  const h = mem.read(rec, RECORD_HEADER);
  const valid = h[24] === 1;
  if (!valid) return { tid, name, recordAddress: rec, valid: false };
  const size = h.readUInt16LE(26);
  const { attributes, unknown } = decodeAttributes(size ? mem.read(rec + BigInt(RECORD_HEADER), Math.min(size, 612)) : Buffer.alloc(0), keyMap);
  return {
    tid, name, recordAddress: rec, valid: true,
    traceId: hex(h.subarray(0, 16)), spanId: hex(h.subarray(16, 24)), traceFlags: h[25],
    attributes, unknownKeys: unknown.length ? unknown : undefined,
  };
}

export function keyMapOf(attrs: Record<string, AnyValue> | undefined): string[] {
  const v = attrs?.['threadlocal.attribute_key_map'];
  return Array.isArray(v) ? v.map((x) => String(x)) : [];
}

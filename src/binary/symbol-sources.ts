// Where a binary's function names come from when it has no symbol table of
// its own, looked for the way debuggers and profilers do:
//   1. --symbols FILE / OTEL_RUST_AGENT_SYMBOLS: an unstripped build of the
//      same binary, accepted when its build id is the same or, builds with
//      different ids, when every loaded segment is byte-identical apart from
//      the build-id note (cargo's strip = "symbols" changes the id: the linker
//      hashes the symbol table it leaves out);
//   2. a separate debug file found by build id, `<dir>/.build-id/xx/yyyy.debug`,
//      in the directories the user names and then /usr/lib/debug;
//   3. the file .gnu_debuglink names (checked by its CRC32), next to the
//      binary, in its .debug/ folder, and under each debug directory;
//   4. a debuginfod server (DEBUGINFOD_URLS), whose answers are kept in a
//      local cache (the debuginfod client's layout: <cache>/<build id>/debuginfo);
//      fetching is async (fetchFromDebuginfod), lookups here only read the cache.
// Symbols from elsewhere give addresses only: probes always go on the
// binary itself, at file offsets computed from its own segments.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ElfFile, PT_LOAD, SHT_SYMTAB } from './elf';
import { UserError, EXIT } from '../util/errors';

export interface SymbolOptions {
  /** An unstripped build of the target (--symbols / OTEL_RUST_AGENT_SYMBOLS). */
  symbolsFile?: string;
  /** Debug-file roots searched before /usr/lib/debug (--debug-dir / OTEL_RUST_AGENT_DEBUG_DIR). */
  debugDirs: string[];
  /** debuginfod servers (DEBUGINFOD_URLS). */
  debuginfodUrls: string[];
  /** debuginfod cache root (DEBUGINFOD_CACHE_PATH, else ~/.cache/debuginfod_client). */
  debuginfodCache: string;
  /** Per-request time limit, ms (DEBUGINFOD_TIMEOUT is in seconds). */
  debuginfodTimeoutMs: number;
}

export const SYSTEM_DEBUG_DIR = '/usr/lib/debug';

export function defaultSymbolOptions(): SymbolOptions {
  return { debugDirs: [], debuginfodUrls: [], debuginfodCache: defaultDebuginfodCache(process.env), debuginfodTimeoutMs: 90_000 };
}

export function defaultDebuginfodCache(env: NodeJS.ProcessEnv): string {
  if (env.DEBUGINFOD_CACHE_PATH) return env.DEBUGINFOD_CACHE_PATH;
  const xdg = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(xdg, 'debuginfod_client');
}

export type SymbolSourceKind = 'own' | 'symbols-file' | 'build-id' | 'debuglink' | 'debuginfod' | 'none';

export interface SymbolSource {
  kind: SymbolSourceKind;
  /** The file the names come from (the binary itself for 'own'). */
  path?: string;
  /** How it was matched to the binary, for `inspect`. */
  detail: string;
  /** The ELF holding the symbol table; undefined for 'none'. */
  elf?: ElfFile;
  /** What was looked at and why it was not used. */
  tried: string[];
}

function hasFunctionSymbols(elf: ElfFile): boolean {
  return elf.sections.some((s) => s.type === SHT_SYMTAB && s.size > 24);
}

function openElf(p: string): ElfFile | undefined {
  try {
    return ElfFile.open(p);
  } catch {
    return undefined;
  }
}

/** File ranges [start, end) of the GNU build-id note's descriptor. */
function buildIdRange(elf: ElfFile): [number, number] | undefined {
  const id = elf.buildId();
  if (!id) return undefined;
  const bytes = Buffer.from(id, 'hex');
  for (const p of elf.programHeaders) {
    if (p.type !== 4 /* PT_NOTE */) continue;
    const at = elf.buf.subarray(p.offset, p.offset + p.filesz).indexOf(bytes);
    if (at >= 0) return [p.offset + at, p.offset + at + bytes.length];
  }
  return undefined;
}

/**
 * Why `other` does not have the same loaded image as `elf`, or undefined when
 * it does: the same PT_LOAD segments (addresses, sizes, flags) with the same
 * bytes, the build-id descriptor excepted.
 */
export function loadedSegmentsDiffer(elf: ElfFile, other: ElfFile): string | undefined {
  const la = elf.programHeaders.filter((p) => p.type === PT_LOAD);
  const lb = other.programHeaders.filter((p) => p.type === PT_LOAD);
  if (la.length !== lb.length) return `${la.length} loaded segments against ${lb.length}`;
  const ra = buildIdRange(elf), rb = buildIdRange(other);
  for (let i = 0; i < la.length; i++) {
    const a = la[i], b = lb[i];
    if (a.vaddr !== b.vaddr || a.memsz !== b.memsz || a.filesz !== b.filesz || a.flags !== b.flags || a.offset !== b.offset)
      return `segment ${i} differs (at 0x${a.vaddr.toString(16)}: ${a.filesz} against ${b.filesz} bytes at 0x${b.vaddr.toString(16)})`;
    const da = Buffer.from(elf.buf.subarray(a.offset, a.offset + a.filesz));
    const db = Buffer.from(other.buf.subarray(b.offset, b.offset + b.filesz));
    for (const [r, d] of [[ra, da], [rb, db]] as const) {
      if (r && r[0] >= a.offset && r[1] <= a.offset + a.filesz) d.fill(0, r[0] - a.offset, r[1] - a.offset);
      // The ELF header, mapped with the first segment, says where the section
      // headers are and how many: that changes with the symbol table.
      if (a.offset === 0) { d.fill(0, 0x28, Math.min(0x30, d.length)); d.fill(0, 0x3a, Math.min(0x40, d.length)); }
    }
    if (ra && rb && ra[0] !== rb[0]) return 'the build-id notes sit at different places';
    if (!da.equals(db)) {
      let k = 0;
      while (k < da.length && da[k] === db[k]) k++;
      return `segment ${i} differs at 0x${(a.vaddr + k).toString(16)}`;
    }
  }
  return undefined;
}

/** Reads .gnu_debuglink: the debug file's name and the CRC32 of its contents. */
export function debugLink(elf: ElfFile): { name: string; crc: number } | undefined {
  const sh = elf.sectionByName('.gnu_debuglink');
  if (!sh) return undefined;
  const d = elf.sectionData(sh);
  const end = d.indexOf(0);
  if (end <= 0) return undefined;
  const crcAt = (end + 4) & ~3;
  if (crcAt + 4 > d.length) return undefined;
  return { name: d.toString('utf8', 0, end), crc: d.readUInt32LE(crcAt) };
}

function crc32(buf: Buffer): number {
  return (zlib as unknown as { crc32(b: Buffer): number }).crc32(buf) >>> 0;
}

/** <root>/.build-id/xx/yyyy.debug */
export function buildIdPath(root: string, buildId: string): string {
  return path.join(root, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`);
}

export function debuginfodCachePath(cache: string, buildId: string): string {
  return path.join(cache, buildId, 'debuginfo');
}

/**
 * The symbol source of `elf` (read from `binPath`, which may be a
 * /proc/self/fd path; `realPath` is where the binary lives, for debuglink
 * lookups next to it). A --symbols file that does not match is an error:
 * the user asked for it.
 */
export function findSymbolSource(elf: ElfFile, realPath: string, opts: SymbolOptions): SymbolSource {
  const tried: string[] = [];
  if (hasFunctionSymbols(elf)) return { kind: 'own', path: realPath, detail: 'the binary\'s own .symtab', elf, tried };
  const id = elf.buildId();

  if (opts.symbolsFile) {
    const f = opts.symbolsFile;
    const other = openElf(f);
    if (!other) throw new UserError(`--symbols ${f}: not a readable ELF file`, EXIT.USAGE);
    if (!hasFunctionSymbols(other)) throw new UserError(`--symbols ${f}: has no symbol table either`, EXIT.USAGE);
    const oid = other.buildId();
    if (id && oid && id === oid) return { kind: 'symbols-file', path: f, detail: `--symbols, same build id ${id}`, elf: other, tried };
    const why = loadedSegmentsDiffer(elf, other);
    if (!why) return { kind: 'symbols-file', path: f, detail: `--symbols, identical loaded segments${id && oid ? ` (build ids ${id} and ${oid})` : ''}`, elf: other, tried };
    throw new UserError(`--symbols ${f} is not a build of ${realPath}: ${id && oid ? `build ids differ (${id}, ${oid}) and ` : ''}${why}`, EXIT.USAGE);
  }

  const roots = [...opts.debugDirs, SYSTEM_DEBUG_DIR];
  const accept = (p: string, kind: SymbolSourceKind, detail: string, check: (o: ElfFile) => string | undefined): SymbolSource | undefined => {
    if (!fs.existsSync(p)) return undefined;
    const o = openElf(p);
    if (!o) { tried.push(`${p}: not an ELF file`); return undefined; }
    if (!hasFunctionSymbols(o)) { tried.push(`${p}: no symbol table`); return undefined; }
    const bad = check(o);
    if (bad) { tried.push(`${p}: ${bad}`); return undefined; }
    return { kind, path: p, detail, elf: o, tried };
  };
  const sameId = (o: ElfFile): string | undefined => {
    const oid = o.buildId();
    return oid === id ? undefined : `build id ${oid ?? 'missing'}, the binary's is ${id}`;
  };

  if (id) {
    for (const r of roots) {
      const s = accept(buildIdPath(r, id), 'build-id', `debug file found by build id ${id}`, sameId);
      if (s) return s;
    }
  }
  const link = debugLink(elf);
  if (link) {
    const dir = path.dirname(realPath);
    const places = [path.join(dir, link.name), path.join(dir, '.debug', link.name), ...roots.map((r) => path.join(r, dir, link.name))];
    for (const p of places) {
      if (path.resolve(p) === path.resolve(realPath)) continue;
      const s = accept(p, 'debuglink', `.gnu_debuglink ${link.name}`, (o) => {
        if (id) return sameId(o);
        const crc = crc32(o.buf);
        return crc === link.crc ? undefined : `CRC32 ${crc.toString(16)}, the link says ${link.crc.toString(16)}`;
      });
      if (s) return s;
    }
  }
  if (id && opts.debuginfodUrls.length) {
    const s = accept(debuginfodCachePath(opts.debuginfodCache, id), 'debuginfod', `debuginfod (cached), build id ${id}`, sameId);
    if (s) return s;
  }
  const looked: string[] = [];
  if (id) looked.push(`build id ${id} under ${roots.join(', ')}`);
  else looked.push('no build id');
  if (link) looked.push(`debuglink ${link.name}`);
  if (opts.debuginfodUrls.length) looked.push(id ? 'debuginfod' : 'debuginfod (needs a build id)');
  return { kind: 'none', detail: `no symbol table, and none found elsewhere (${looked.join('; ')})`, tried };
}

/**
 * Asks the DEBUGINFOD_URLS servers for the debug file of `buildId` and keeps
 * it in the cache; resolves with its path, or undefined with the reasons in
 * `errors`. A file already cached is not fetched again.
 */
export async function fetchFromDebuginfod(buildId: string, opts: SymbolOptions, errors: string[] = []): Promise<string | undefined> {
  const dest = debuginfodCachePath(opts.debuginfodCache, buildId);
  if (fs.existsSync(dest)) return dest;
  for (const base of opts.debuginfodUrls) {
    const url = `${base.replace(/\/+$/, '')}/buildid/${buildId}/debuginfo`;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), opts.debuginfodTimeoutMs);
    try {
      const res = await fetch(url, { signal: ctl.signal });
      if (res.status !== 200) { errors.push(`${url}: HTTP ${res.status}`); await res.body?.cancel(); continue; }
      const body = Buffer.from(await res.arrayBuffer());
      fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
      const tmp = `${dest}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, body, { mode: 0o644 });
      fs.renameSync(tmp, dest);
      return dest;
    } catch (e) {
      errors.push(`${url}: ${(e as Error).name === 'AbortError' ? `no answer in ${opts.debuginfodTimeoutMs} ms` : (e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
  return undefined;
}

/**
 * Before analysis: when the binary has no symbols and nothing local supplies
 * them, fill the debuginfod cache. Errors are returned (as warnings), never thrown.
 */
export async function prefetchSymbols(binPath: string, realPath: string, opts: SymbolOptions): Promise<string[]> {
  if (opts.debuginfodUrls.length === 0 || opts.symbolsFile) return [];
  let elf: ElfFile;
  try { elf = ElfFile.open(binPath); } catch { return []; }
  const id = elf.buildId();
  if (!id) return [];
  const local = findSymbolSource(elf, realPath, { ...opts, debuginfodUrls: [] });
  if (local.kind !== 'none') return [];
  const errors: string[] = [];
  return (await fetchFromDebuginfod(id, opts, errors)) ? [] : errors;
}

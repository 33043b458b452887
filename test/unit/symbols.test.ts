// Symbols of stripped binaries: where they are looked for (symbol-sources.ts),
// and, with none anywhere, functions identified by their code signatures
// (plan/identify.ts), checked against the symbol table of the same build.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { appBinary, buildRustc, tool } from '../helpers/rustbuild';
import { dwarfStructs, lastComponent } from '../../src/binary/dwarf';
import { layoutDb } from '../../src/plan/layouts';
import { signatureDb } from '../../src/plan/identify';
import { analyzeBinary, ElfFile } from '../../src/binary';
import { fdeRanges } from '../../src/binary/eh-frame';
import { findSymbolSource, fetchFromDebuginfod, prefetchSymbols, buildIdPath, debugLink, type SymbolOptions } from '../../src/binary/symbol-sources';
import { planProbes } from '../../src/plan/plan';
import { PROBE_MODULES } from '../../src/libs';
import { symbolOptions } from '../../src/cli/config';
import { UserError } from '../../src/util/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'symbols-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function opts(o: Partial<SymbolOptions> = {}): SymbolOptions {
  return { debugDirs: [], debuginfodUrls: [], debuginfodCache: path.join(tmp, 'no-cache'), debuginfodTimeoutMs: 5000, ...o };
}

function stripCopy(src: string, name: string, ...extra: string[]): string {
  const out = path.join(tmp, name);
  execFileSync('objcopy', ['--strip-all', ...extra, src, out]);
  return out;
}

const PARSE = '<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse';
const ENCODE = '<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::encode';

describe('.eh_frame', () => {
  test('every function symbol of a Rust release build starts an FDE', () => {
    const info = analyzeBinary(appBinary('demo-service'));
    const starts = new Set(fdeRanges(info.elf).map((f) => f.start));
    const fns = info.functions().filter((f) => f.size > 16);
    const missing = fns.filter((f) => !starts.has(f.vaddr));
    assert.ok(fns.length > 1000);
    assert.ok(missing.length / fns.length < 0.01, `${missing.length} of ${fns.length} functions without an FDE: ${missing.slice(0, 5).map((f) => f.demangled).join(', ')}`);
    const p = info.functionsByName(PARSE)[0];
    assert.deepEqual(fdeRanges(info.elf).find((f) => f.start === p.vaddr), { start: p.vaddr, end: p.vaddr + p.size });
  });
});

describe('no symbols anywhere: code signatures', () => {
  for (const app of ['demo-service', 'hyper014-server'] as const) {
    test(`${app}: each probed function is found at its real address, with the checks passed`, () => {
      const full = analyzeBinary(appBinary(app));
      const stripped = analyzeBinary(stripCopy(appBinary(app), `${app}-stripped`), opts());
      assert.equal(stripped.stripped, true);
      assert.equal(stripped.symbolSource.kind, 'none');
      const plan = planProbes(stripped, PROBE_MODULES).modules[0];
      assert.equal(plan.active, true, plan.reason);
      const at = (id: string) => plan.probes.find((p) => p.spec.id === id)!;
      assert.deepEqual(at('parse').functions.map((f) => f.vaddr), full.functionsByName(PARSE).map((f) => f.vaddr));
      assert.deepEqual(at('encode_status').functions.map((f) => f.vaddr), full.functionsByName(ENCODE).map((f) => f.vaddr));
      assert.equal(at('encode_status').status, 'ready');
      assert.equal(at('encode_status').chain?.source, 'db+code');
      assert.deepEqual(at('encode_ret').sites.map((s) => s.fileOffset),
        planProbes(full, PROBE_MODULES).modules[0].probes.find((p) => p.spec.id === 'encode_ret')!.sites.map((s) => s.fileOffset));
      assert.match(at('parse').notes.join('\n'), /identified without symbols: .*loads BytesMut\.ptr\/len from rsi/);
    });
  }
});

describe('symbol sources', () => {
  test('a debug file under <dir>/.build-id/xx/yyyy.debug, matched by build id', () => {
    const u = appBinary('hyper014-server');
    const id = ElfFile.open(u).buildId()!;
    const root = path.join(tmp, 'dbg');
    const dbg = buildIdPath(root, id);
    fs.mkdirSync(path.dirname(dbg), { recursive: true });
    execFileSync('objcopy', ['--only-keep-debug', u, dbg]);
    const s = stripCopy(u, 'h014-split');
    const src = findSymbolSource(ElfFile.open(s), s, opts({ debugDirs: [root] }));
    assert.equal(src.kind, 'build-id');
    assert.equal(src.path, dbg);
    const info = analyzeBinary(s, opts({ debugDirs: [root] }));
    // Addresses from the debug file, file offsets from the stripped binary.
    const f = info.functionsByName(PARSE)[0];
    assert.equal(f.vaddr, analyzeBinary(u).functionsByName(PARSE)[0].vaddr);
    assert.equal(f.fileOffset, info.elf.vaddrToFileOffset(f.vaddr));
    // Without the directory: nothing.
    assert.equal(findSymbolSource(ElfFile.open(s), s, opts()).kind, 'none');
  });

  test('.gnu_debuglink next to the binary, checked by CRC32 when there is no build id', () => {
    const u = appBinary('hyper014-server');
    const dir = path.join(tmp, 'link');
    fs.mkdirSync(dir);
    const noId = path.join(dir, 'app-noid');
    execFileSync('objcopy', ['--remove-section=.note.gnu.build-id', u, noId]);
    const dbg = path.join(dir, 'app.debug');
    execFileSync('objcopy', ['--only-keep-debug', noId, dbg]);
    const s = path.join(dir, 'app');
    execFileSync('objcopy', ['--strip-all', `--add-gnu-debuglink=${dbg}`, noId, s]);
    assert.equal(ElfFile.open(s).buildId(), null);
    assert.equal(debugLink(ElfFile.open(s))?.name, 'app.debug');
    const src = findSymbolSource(ElfFile.open(s), s, opts());
    assert.equal(src.kind, 'debuglink');
    assert.equal(src.path, dbg);
    // A different file under that name fails the CRC and is not used.
    fs.writeFileSync(dbg, fs.readFileSync(stripCopy(u, 'other')));
    execFileSync('objcopy', ['--only-keep-debug', appBinary('demo-service'), dbg]);
    const bad = findSymbolSource(ElfFile.open(s), s, opts());
    assert.equal(bad.kind, 'none');
    assert.match(bad.tried.join('\n'), /app\.debug: CRC32 [0-9a-f]+, the link says [0-9a-f]+/);
  });

  test('--symbols: same build id, identical segments, or a one-line error', () => {
    const u = appBinary('hyper014-server');
    const s = stripCopy(u, 'h014-for-symbols');
    assert.match(findSymbolSource(ElfFile.open(s), s, opts({ symbolsFile: u })).detail, /^--symbols, same build id/);
    // Another build id, same code: accepted by its loaded segments.
    const reid = path.join(tmp, 'h014-reid');
    const id = ElfFile.open(u).buildId()!;
    const other = Buffer.from(fs.readFileSync(u));
    other.set(Buffer.alloc(id.length / 2, 0xab), other.indexOf(Buffer.from(id, 'hex')));
    fs.writeFileSync(reid, other);
    assert.match(findSymbolSource(ElfFile.open(s), s, opts({ symbolsFile: reid })).detail, /^--symbols, identical loaded segments \(build ids/);
    assert.throws(() => findSymbolSource(ElfFile.open(s), s, opts({ symbolsFile: appBinary('demo-service') })),
      (e: unknown) => e instanceof UserError && e.exitCode === 2 && /^--symbols .*demo-service is not a build of .*: build ids differ \([0-9a-f]+, [0-9a-f]+\) and (\d+ loaded segments against \d+|segment \d+ differs)/.test(e.message));
    assert.throws(() => findSymbolSource(ElfFile.open(s), s, opts({ symbolsFile: s })), /has no symbol table either/);
  });

  test('debuginfod: fetched once from the URL layout, kept in the cache, errors reported', async () => {
    const u = appBinary('hyper014-server');
    const id = ElfFile.open(u).buildId()!;
    const dbg = path.join(tmp, 'served.debug');
    execFileSync('objcopy', ['--only-keep-debug', u, dbg]);
    const s = stripCopy(u, 'h014-debuginfod');
    const hits: string[] = [];
    const server = http.createServer((req, res) => {
      hits.push(req.url!);
      if (req.url === `/buildid/${id}/debuginfo`) res.end(fs.readFileSync(dbg));
      else { res.statusCode = 404; res.end(); }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const cache = path.join(tmp, 'cache');
      const o = opts({ debuginfodUrls: [`${url}/missing-root`, url], debuginfodCache: cache });
      assert.deepEqual(await prefetchSymbols(s, s, o), []);
      assert.deepEqual(hits, [`/missing-root/buildid/${id}/debuginfo`, `/buildid/${id}/debuginfo`]);
      const src = findSymbolSource(ElfFile.open(s), s, o);
      assert.equal(src.kind, 'debuginfod');
      assert.equal(src.path, path.join(cache, id, 'debuginfo'));
      await prefetchSymbols(s, s, o);
      assert.equal(hits.length, 2, 'served from the cache the second time');
      const errors: string[] = [];
      assert.equal(await fetchFromDebuginfod('00'.repeat(20), opts({ debuginfodUrls: [url], debuginfodCache: cache }), errors), undefined);
      assert.deepEqual(errors, [`${url}/buildid/${'00'.repeat(20)}/debuginfo: HTTP 404`]);
    } finally {
      server.close();
    }
  });

  test('configuration: flags and variables, one-line errors', () => {
    const w: string[] = [];
    const o = symbolOptions({}, { OTEL_RUST_AGENT_DEBUG_DIR: `${tmp}:/usr/lib/debug`, DEBUGINFOD_URLS: 'http://a.test/ ftp://b.test', DEBUGINFOD_CACHE_PATH: '/c', DEBUGINFOD_TIMEOUT: '5' }, w);
    assert.deepEqual(o, { symbolsFile: undefined, debugDirs: [tmp, '/usr/lib/debug'], debuginfodUrls: ['http://a.test/'], debuginfodCache: '/c', debuginfodTimeoutMs: 5000 });
    assert.deepEqual(w, ['DEBUGINFOD_URLS: "ftp://b.test" is not an http(s) URL; ignored']);
    assert.throws(() => symbolOptions({ symbols: path.join(tmp, 'nope') }, {}, []), { message: `--symbols: ${path.join(tmp, 'nope')}: no such file` });
    assert.throws(() => symbolOptions({}, { OTEL_RUST_AGENT_SYMBOLS: tmp }, []), { message: `OTEL_RUST_AGENT_SYMBOLS: ${tmp}: not a regular file` });
    assert.throws(() => symbolOptions({ 'debug-dir': '/nonexistent' }, {}, []), { message: '--debug-dir: /nonexistent: not a directory' });
  });
});

describe('DWARF', () => {
  const SRC = `pub mod proto {
    pub struct MessageHead<T> { pub version: u8, pub subject: T, pub headers: Vec<u8>, pub extra: Option<Box<u64>> }
    pub mod h1 { pub struct Encode<'a, T> { pub head: &'a mut super::MessageHead<T>, pub keep_alive: bool, pub req_method: &'a mut Option<u32> } }
  }
  fn main() {
    let mut h = proto::MessageHead { version: 1, subject: 200u16, headers: vec![1, 2], extra: None };
    let mut m = Some(3u32);
    let e = proto::h1::Encode { head: &mut h, keep_alive: std::hint::black_box(true), req_method: &mut m };
    std::hint::black_box(&e);
  }`;

  test('member offsets of named structures agree with llvm-dwarfdump', () => {
    const bin = buildRustc(SRC, { name: 'dwarfprobe', extraArgs: ['-g'] });
    const got = dwarfStructs(ElfFile.open(bin), new Set(['dwarfprobe::proto::MessageHead<u16>', 'dwarfprobe::proto::h1::Encode<u16>']));
    assert.deepEqual(got.map((g) => g.name).sort(), ['dwarfprobe::proto::MessageHead<u16>', 'dwarfprobe::proto::h1::Encode<u16>']);
    for (const g of got) {
      const dump = tool('llvm-dwarfdump-14', `--name=${lastComponent(g.name)}`, '--show-children', bin);
      const want: Record<string, number> = {};
      for (const m of dump.matchAll(/DW_TAG_member\n\s+DW_AT_name\s+\("(\w+)"\)\n(?:\s+DW_AT_\w+\s+\([^\n]*\)\n)*?\s+DW_AT_data_member_location\s+\((0x[0-9a-f]+)\)/g)) want[m[1]] = Number(m[2]);
      assert.deepEqual(g.members, want, g.name);
      assert.equal(g.size, Number(/DW_AT_byte_size\s+\((0x[0-9a-f]+)\)/.exec(dump)![1]));
    }
    assert.equal(lastComponent('a::b::Foo<c::D, e::F<g::H>>'), 'Foo<c::D, e::F<g::H>>');
    assert.deepEqual(dwarfStructs(ElfFile.open(appBinary('hyper014-server')), new Set(['hyper::proto::MessageHead<http::status::StatusCode>'])), [], 'a release build has no hyper DWARF');
  });
});

describe('offsets database', () => {
  test('covers rustc 1.85, 1.95 and 1.96, and every hyper version has code signatures of parse and encode', () => {
    const hyper = [...new Set(layoutDb().filter((e) => e.crate === 'hyper').map((e) => e.crateVersion!))];
    for (const rustc of ['1.85.0', '1.95.0', '1.96.0']) {
      const es = layoutDb().filter((e) => e.rustc === rustc);
      // The HTTP/1 types for every compiler (rustc 1.95 also has the h2, http,
      // axum and tokio types of the HTTP/2 libraries).
      const types = new Set(es.map((e) => e.type));
      for (const t of ['BytesMut', 'Vec<u8>', 'hyper::proto::MessageHead<StatusCode>', 'hyper::proto::h1::Encode<StatusCode>']) assert.ok(types.has(t), `${rustc} ${t}`);
      for (const v of hyper) assert.ok(es.some((e) => e.crateVersion === v && e.type === 'hyper::proto::MessageHead<StatusCode>'), `${rustc} hyper ${v}`);
    }
    for (const v of hyper) {
      for (const f of [PARSE, ENCODE]) {
        const sig = signatureDb().find((e) => e.crate === 'hyper' && e.crateVersion === v && e.symbol === f);
        assert.ok(sig && sig.anchors.length > 0, `signature of ${f} for hyper ${v}`);
        assert.deepEqual(sig.from, ['rustc 1.85.0', 'rustc 1.95.0', 'rustc 1.96.0']);
      }
    }
  });
});

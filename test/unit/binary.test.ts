// Binary analysis, checked against binaries compiled during the test and against
// independent oracles (readelf, objdump, nm, rustc --version, Cargo.lock).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeBinary, BinaryError, BinaryInfo, ElfFile, FunctionSymbol } from '../../src/binary';
import { demangle, isRustMangled, legacyHash } from '../../src/binary/demangle';
import { ET_DYN, EM_X86_64, PT_LOAD, PT_TLS, SHF_COMPRESSED } from '../../src/binary/elf';
import { findReturnSites } from '../../src/binary/returns';
import { EXIT } from '../../src/util/errors';
import { appBinary, buildRustc, repoRoot, tool } from '../helpers/rustbuild';

// `work` has three returns (objdump: two early `ret`s and the final one).
const WORK_SRC = `
use std::hint::black_box;

#[inline(never)]
fn work(x: u64) -> u64 {
    if x % 3 == 0 {
        return x / 3;
    }
    if x > 1000 {
        x * 2 + 1
    } else {
        x.wrapping_mul(7) ^ 0x55
    }
}

fn main() {
    let n = std::env::args().count() as u64;
    let mut acc = 0u64;
    for i in 0..n * 10 {
        acc = acc.wrapping_add(work(black_box(i)));
    }
    println!("{acc}");
}
`;

const HYPER_PARSE = '<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse';
const HYPER_ENCODE = '<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::encode';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'binary-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

interface Exits { rets: number[]; tailJumps: number[]; indirectJumps: number[] }

/** Exit sites of one function according to objdump, with its size from nm. */
function objdumpExits(bin: string, mangled: string): Exits {
  const nmLine = tool('nm', '-S', bin).split('\n').find((l) => l.endsWith(` ${mangled}`));
  assert.ok(nmLine, `nm does not list ${mangled}`);
  const [startHex, sizeHex] = nmLine.split(' ');
  const start = parseInt(startHex, 16);
  const end = start + parseInt(sizeHex, 16);
  const lines = tool('objdump', '-d', '--no-show-raw-insn', `--disassemble=${mangled}`, bin).split('\n');
  const first = lines.findIndex((l) => l === `${startHex.replace(/^0+(?=.)/, '').padStart(16, '0')} <${mangled}>:`);
  assert.ok(first >= 0, `objdump has no block for ${mangled}`);
  const out: Exits = { rets: [], tailJumps: [], indirectJumps: [] };
  for (const line of lines.slice(first + 1)) {
    const m = /^\s+([0-9a-f]+):\s+(?:(?:bnd|notrack)\s+)?(\S+)\s*(.*)$/.exec(line);
    if (!m) break;
    const [, addrHex, mnemonic, operands] = m;
    const addr = parseInt(addrHex, 16);
    if (mnemonic.startsWith('ret')) out.rets.push(addr);
    else if (mnemonic.startsWith('j')) {
      if (operands.startsWith('*')) out.indirectJumps.push(addr);
      else {
        const target = parseInt(operands, 16);
        if (target < start || target >= end) out.tailJumps.push(addr);
      }
    }
  }
  return out;
}

interface ReadelfSegment { type: string; offset: number; vaddr: number; filesz: number; memsz: number }

function readelfSegments(bin: string): ReadelfSegment[] {
  const out: ReadelfSegment[] = [];
  for (const line of tool('readelf', '-lW', bin).split('\n')) {
    const m = /^\s+(LOAD|TLS)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)/.exec(line);
    if (m) out.push({ type: m[1], offset: parseInt(m[2], 16), vaddr: parseInt(m[3], 16), filesz: parseInt(m[4], 16), memsz: parseInt(m[5], 16) });
  }
  return out;
}

function vaddrs(sites: { vaddr: number }[]): number[] {
  return sites.map((s) => s.vaddr);
}

function assertExitsMatchObjdump(info: BinaryInfo, fn: FunctionSymbol): Exits {
  const expected = objdumpExits(info.path, fn.mangled);
  const got = info.returnSites(fn);
  assert.deepEqual(
    { rets: vaddrs(got.rets), tailJumps: vaddrs(got.tailJumps), indirectJumps: vaddrs(got.indirectJumps) },
    expected,
  );
  for (const site of [...got.rets, ...got.tailJumps, ...got.indirectJumps]) {
    assert.equal(site.fileOffset, info.elf.vaddrToFileOffset(site.vaddr));
  }
  return expected;
}

function lockVersions(name: string): string[] {
  const lock = fs.readFileSync(path.join(repoRoot(), 'apps', 'Cargo.lock'), 'utf8');
  const out: string[] = [];
  for (const block of lock.split('[[package]]')) {
    if (/^name = "(.+)"$/m.exec(block)?.[1] === name) out.push(/^version = "(.+)"$/m.exec(block)![1]);
  }
  return out;
}

function allLockPackages(): Set<string> {
  const lock = fs.readFileSync(path.join(repoRoot(), 'apps', 'Cargo.lock'), 'utf8');
  const out = new Set<string>();
  for (const block of lock.split('[[package]]').slice(1)) {
    out.add(`${/^name = "(.+)"$/m.exec(block)![1]}@${/^version = "(.+)"$/m.exec(block)![1]}`);
  }
  return out;
}

describe('ELF reader and symbol index on a rustc -O binary', () => {
  const bin = buildRustc(WORK_SRC, { name: 'demo' });
  const info = analyzeBinary(bin);

  test('headers and segments match readelf', () => {
    assert.equal(info.elf.header.type, ET_DYN);
    assert.equal(info.elf.header.machine, EM_X86_64);
    const ours = info.elf.programHeaders
      .filter((p) => p.type === PT_LOAD || p.type === PT_TLS)
      .map((p) => ({ type: p.type === PT_LOAD ? 'LOAD' : 'TLS', offset: p.offset, vaddr: p.vaddr, filesz: p.filesz, memsz: p.memsz }));
    assert.deepEqual(ours, readelfSegments(bin));
    const tls = info.elf.tlsSegment();
    assert.ok(tls);
    const readelfTls = readelfSegments(bin).find((s) => s.type === 'TLS')!;
    assert.equal(tls.vaddr, readelfTls.vaddr);
    assert.equal(tls.memsz, readelfTls.memsz);
  });

  test('symbol tables, build-id and section names match readelf', () => {
    const readelfCounts = new Map<string, number>();
    for (const m of tool('readelf', '-sW', bin).matchAll(/Symbol table '(\.\w+)' contains (\d+) entries/g)) {
      readelfCounts.set(m[1], Number(m[2]) - 1); // readelf counts the null entry
    }
    const syms = info.elf.symbols();
    assert.equal(syms.filter((s) => s.table === 'symtab').length, readelfCounts.get('.symtab'));
    assert.equal(syms.filter((s) => s.table === 'dynsym').length, readelfCounts.get('.dynsym'));
    const buildId = /Build ID: ([0-9a-f]+)/.exec(tool('readelf', '-n', bin))![1];
    assert.equal(info.elf.buildId(), buildId);
    const sectionNames = [...tool('readelf', '-SW', bin).matchAll(/^\s+\[\s*\d+\]\s+(\S*)\s/gm)].map((m) => m[1]);
    assert.deepEqual(info.elf.sections.slice(1).map((s) => s.name), sectionNames.slice(1));
  });

  test('rustc version equals `rustc --version`', () => {
    const m = /^rustc (\S+) (\(.*\))$/.exec(tool('rustc', '--version').trim())!;
    assert.deepEqual(info.rustc, { version: m[1], full: `rustc version ${m[1]} ${m[2]}` });
    assert.ok(info.elf.comment().includes(info.rustc!.full));
    assert.equal(info.isRust, true);
    assert.equal(info.stripped, false);
  });

  test('finds `work` by demangled name, with the file offset readelf implies', () => {
    const fns = info.functionsByName('demo::work');
    assert.equal(fns.length, 1);
    const work = fns[0];
    assert.match(work.mangled, /^_ZN4demo4work17h[0-9a-f]{16}E$/);
    assert.equal(work.hash, work.mangled.slice(-17, -1));
    const nmLine = tool('nm', '-S', bin).split('\n').find((l) => l.endsWith(` ${work.mangled}`))!;
    assert.equal(work.vaddr, parseInt(nmLine.split(' ')[0], 16));
    assert.equal(work.size, parseInt(nmLine.split(' ')[1], 16));
    const seg = readelfSegments(bin).find((s) => s.type === 'LOAD' && work.vaddr >= s.vaddr && work.vaddr < s.vaddr + s.filesz)!;
    assert.equal(work.fileOffset, work.vaddr - seg.vaddr + seg.offset);
    assert.notEqual(work.fileOffset, work.vaddr); // the text segment is not at offset == vaddr here
    assert.deepEqual(info.elf.readAtVaddr(work.vaddr, work.size), fs.readFileSync(bin).subarray(work.fileOffset, work.fileOffset + work.size));
    assert.deepEqual(info.findFunctions('demo::work'), fns);
    assert.deepEqual(info.findFunctions((f) => f.demangled.endsWith('::work') && f.demangled.startsWith('demo::')), fns);
  });

  test('return sites of `work` equal objdump', () => {
    const [work] = info.functionsByName('demo::work');
    const exits = assertExitsMatchObjdump(info, work);
    assert.equal(exits.rets.length, 3);
  });

  test('vaddrToFileOffset rejects addresses outside file-backed segments', () => {
    const bss = info.elf.programHeaders.find((p) => p.type === PT_LOAD && p.memsz > p.filesz)!;
    assert.throws(() => info.elf.vaddrToFileOffset(bss.vaddr + bss.filesz), BinaryError);
    assert.throws(() => info.elf.readAtVaddr(bss.vaddr + bss.filesz - 4, 8), /crosses the end of its segment/);
  });

  test('one binary mixes legacy user symbols and v0 std symbols; both demangle', () => {
    const fns = info.functions();
    const v0 = fns.filter((f) => f.mangled.startsWith('_R'));
    const legacy = fns.filter((f) => f.mangled.startsWith('_ZN'));
    // std comes precompiled with v0 names; the user crate and what it instantiates are legacy.
    assert.ok(v0.length > 100, `only ${v0.length} v0 symbols`);
    const legacyNames = legacy.map((f) => f.demangled);
    for (const name of ['demo::work', 'demo::main', 'std::rt::lang_start::{{closure}}']) assert.ok(legacyNames.includes(name), name);
    for (const f of [...v0, ...legacy]) {
      assert.notEqual(f.demangled, f.mangled);
      assert.doesNotMatch(f.demangled, /::h[0-9a-f]{16}$/);
    }
    for (const f of v0) assert.equal(f.hash, null);
    const lang = info.functionsByName('std::rt::lang_start_internal');
    assert.equal(lang.length, 1);
    assert.match(lang[0].mangled, /^_RNvNtCs[0-9A-Za-z_]+_3std2rt19lang_start_internal$/);
  });
});

describe('crateVersions', () => {
  test('names with dashes, pre-release and build versions, both path layouts', () => {
    // Panic-location-like paths kept in .rodata by printing them.
    const src = `fn main() {
    let paths = [
        "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/http-body-util-0.1.5/src/lib.rs",
        "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/h2-0.4.12/src/codec/mod.rs",
        "/cargo/registry/github.com-1ecc6299db9ec823/foo-bar-2.0.0-rc.1/src/a.rs",
        "/x/registry/src/mirror/wasi-0.11.0+wasi-snapshot-preview1/src/lib.rs",
        "/x/registry/src/mirror/h2-0.3.26/src/lib.rs",
        "/x/registry/src/mirror/not-a-crate/src/lib.rs",
    ];
    for p in std::hint::black_box(paths) { println!("{p}"); }
}`;
    const info = analyzeBinary(buildRustc(src, { name: 'paths' }));
    assert.deepEqual(
      [...info.crates],
      [
        ['foo-bar', ['2.0.0-rc.1']],
        ['h2', ['0.3.26', '0.4.12']],
        ['http-body-util', ['0.1.5']],
        ['wasi', ['0.11.0+wasi-snapshot-preview1']],
      ],
    );
  });
});

describe('v0 mangling of user code (-C symbol-mangling-version=v0)', () => {
  const bin = buildRustc(WORK_SRC, { name: 'demo', extraArgs: ['-C', 'symbol-mangling-version=v0'] });
  const info = analyzeBinary(bin);

  test('`work` is found by demangled name and its exits equal objdump', () => {
    const fns = info.functionsByName('demo::work');
    assert.equal(fns.length, 1);
    assert.match(fns[0].mangled, /^_RNvCs[0-9A-Za-z_]+_4demo4work$/);
    assert.equal(fns[0].hash, null);
    assert.equal(assertExitsMatchObjdump(info, fns[0]).rets.length, 3);
  });
});

describe('demangle', () => {
  test('legacy names lose their hash and escapes', () => {
    const m = '_ZN85_$LT$hyper..proto..h1..role..Server$u20$as$u20$hyper..proto..h1..Http1Transaction$GT$5parse17h3b7ac4bcd7fc949bE';
    assert.equal(demangle(m), HYPER_PARSE);
    assert.equal(legacyHash(m), '3b7ac4bcd7fc949b');
    assert.equal(isRustMangled(m), true);
  });

  test('v0 names, and .llvm suffixes are dropped', () => {
    assert.equal(demangle('_RNvCs39vDlMfRhXt_2cg4main'), 'cg::main');
    assert.equal(demangle('_RNvCs39vDlMfRhXt_2cg4main.llvm.12345'), 'cg::main');
    assert.equal(demangle('_ZN4core3ptr13drop_in_place17h0123456789abcdefE.llvm.999'), 'core::ptr::drop_in_place');
    assert.equal(legacyHash('_ZN4core3ptr13drop_in_place17h0123456789abcdefE.llvm.999'), '0123456789abcdef');
    assert.equal(legacyHash('_RNvCs39vDlMfRhXt_2cg4main'), null);
  });

  test('non-Rust and invalid names give null', () => {
    for (const name of ['main', '_Z3foov', '_ZN3foo3barE', '_ZNSt6vectorIiSaIiEE9push_backEOi', '_RNvCsXX', '']) {
      assert.equal(demangle(name), null, name);
    }
    assert.equal(isRustMangled('_ZN3foo3barE'), false);
    assert.equal(isRustMangled('memcpy'), false);
  });
});

describe('findReturnSites on hand-assembled code', () => {
  test('ret, tail jumps (direct and conditional), indirect jump; jumps inside are ignored', () => {
    const code = Buffer.from([
      0x74, 0x02,                         // 0x1000: je 0x1004 (inside)
      0xeb, 0x00,                         // 0x1002: jmp 0x1004 (inside)
      0x0f, 0x84, 0x00, 0x10, 0x00, 0x00, // 0x1004: je 0x200a (outside: conditional tail call)
      0xff, 0xe0,                         // 0x100a: jmp rax
      0xc3,                               // 0x100c: ret
      0xe9, 0xee, 0xef, 0xff, 0xff,       // 0x100d: jmp 0x0 (outside: tail call)
      0xc2, 0x08, 0x00,                   // 0x1012: ret 8
    ]);
    assert.deepEqual(findReturnSites(code, 0x1000), { rets: [0x100c, 0x1012], tailJumps: [0x1004, 0x100d], indirectJumps: [0x100a] });
  });
});

describe('SHF_COMPRESSED sections', () => {
  test('zlib-compressed .debug_info reads back identical to the uncompressed build', () => {
    const plain = buildRustc(WORK_SRC, { name: 'demo', extraArgs: ['-g'] });
    const compressed = path.join(tmp, 'demo-gz');
    tool('objcopy', '--compress-debug-sections=zlib', plain, compressed);
    const a = ElfFile.open(plain);
    const b = ElfFile.open(compressed);
    const ia = a.sectionByName('.debug_info')!;
    const ib = b.sectionByName('.debug_info')!;
    assert.equal(ia.flags & SHF_COMPRESSED, 0);
    assert.equal(ib.flags & SHF_COMPRESSED, SHF_COMPRESSED);
    assert.ok(ib.size < ia.size);
    assert.deepEqual(b.sectionData(ib), a.sectionData(ia));
  });
});

for (const app of [
  { name: 'demo-service' as const, crates: { hyper: '1.', axum: '0.8.', tokio: '1.' } },
  { name: 'hyper014-server' as const, crates: { hyper: '0.14.', tokio: '1.' } },
]) {
  describe(`apps: ${app.name}`, () => {
    const bin = appBinary(app.name);
    const t0 = performance.now();
    const info = analyzeBinary(bin);
    const analyzeMs = performance.now() - t0;

    test('crate versions equal Cargo.lock', (t) => {
      t.diagnostic(`analyzeBinary: ${analyzeMs.toFixed(1)} ms`);
      for (const [crate, prefix] of Object.entries(app.crates)) {
        const expected = lockVersions(crate).filter((v) => v.startsWith(prefix));
        assert.equal(expected.length, 1, `${crate} ${prefix}x in Cargo.lock`);
        assert.deepEqual(info.crates.get(crate), expected, crate);
      }
      // Nothing invented: every crate@version seen in the binary is in the lock file.
      const locked = allLockPackages();
      for (const [crate, versions] of info.crates) {
        for (const v of versions) assert.ok(locked.has(`${crate}@${v}`), `${crate}@${v} not in Cargo.lock`);
      }
      assert.equal(info.isRust, true);
      assert.equal(info.stripped, false);
    });

    test('hyper Server::parse and ::encode are found and their exits equal objdump', (t) => {
      const t1 = performance.now();
      for (const name of [HYPER_PARSE, HYPER_ENCODE]) {
        const fns = info.functionsByName(name);
        assert.ok(fns.length >= 1, name);
        for (const fn of fns) {
          assert.equal(fn.demangled, name);
          const exits = assertExitsMatchObjdump(info, fn);
          assert.ok(exits.rets.length >= 1);
          t.diagnostic(`${name} ${fn.mangled} size=${fn.size} rets=${exits.rets.length} tail=${exits.tailJumps.length} indirect=${exits.indirectJumps.length}`);
        }
      }
      t.diagnostic(`index of ${info.functions().length} functions + lookups: ${(performance.now() - t1).toFixed(1)} ms`);
    });
  });
}

describe('rejections and non-Rust inputs', () => {
  const bin = buildRustc(WORK_SRC, { name: 'demo' });

  test('a text file is not an ELF file', () => {
    const p = path.join(tmp, 'notes.txt');
    fs.writeFileSync(p, 'just some text\n');
    assert.throws(() => analyzeBinary(p), (e: unknown) => {
      assert.ok(e instanceof BinaryError);
      assert.equal(e.message, `${p}: not an ELF file`);
      assert.equal(e.exitCode, EXIT.TARGET);
      return true;
    });
  });

  test('a missing file', () => {
    const p = path.join(tmp, 'does-not-exist');
    assert.throws(() => analyzeBinary(p), { name: 'BinaryError', message: `${p}: cannot read file (ENOENT)` });
  });

  test('truncated ELF files', () => {
    const full = fs.readFileSync(bin);
    const header = path.join(tmp, 'trunc-header');
    fs.writeFileSync(header, full.subarray(0, 40));
    assert.throws(() => analyzeBinary(header), { message: `${header}: truncated ELF file (ELF header past end of file)` });
    const half = path.join(tmp, 'trunc-half');
    fs.writeFileSync(half, full.subarray(0, full.length >> 1));
    assert.throws(() => analyzeBinary(half), (e: unknown) => {
      assert.ok(e instanceof BinaryError);
      assert.match(e.message, new RegExp(`^${half}: truncated ELF file \\(.+ past end of file\\)$`));
      return true;
    });
  });

  test('32-bit and big-endian ELF files', () => {
    const elf32 = Buffer.from(fs.readFileSync(bin).subarray(0, 64));
    elf32[4] = 1;
    assert.throws(() => ElfFile.fromBuffer(elf32, '/x32'), { message: '/x32: 32-bit ELF files are not supported (only x86-64)' });
    const be = Buffer.from(fs.readFileSync(bin).subarray(0, 64));
    be[5] = 2;
    assert.throws(() => ElfFile.fromBuffer(be, '/xbe'), { message: '/xbe: big-endian ELF files are not supported (only x86-64)' });
  });

  test('/bin/ls is not Rust', () => {
    const info = analyzeBinary('/bin/ls');
    assert.equal(info.isRust, false);
    assert.equal(info.rustc, null);
    assert.equal(info.crates.size, 0);
    assert.equal(info.stripped, true);
  });

  test('a stripped Rust binary', () => {
    const p = path.join(tmp, 'demo-stripped');
    fs.copyFileSync(bin, p);
    tool('strip', p);
    const info = analyzeBinary(p);
    assert.equal(info.stripped, true);
    assert.equal(info.isRust, true); // .comment survives strip
    assert.equal(info.elf.sectionByName('.symtab'), undefined);
    assert.deepEqual(info.functionsByName('demo::work'), []);
  });
});

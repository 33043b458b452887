// The offsets database (offsets/layouts.json) against a real build, the
// generator's pieces (DWARF parsing, field flattening, merging, formatting),
// and the agent's use of the database (resolveLayout, cookie bits).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LayoutEntry, layoutDb, layoutCookieBits, resolveLayout, ResolvedLayout } from '../../src/plan/layouts';
import { repoRoot } from '../../src/util/paths';
import {
  AXUM_TYPES, DEFAULT_COMMENT, ENCODE_FIELDS, flattenFields, H2_TYPES, TOKIO_TYPES, formatDb, HEAD_FIELDS, HYPER_ENCODE, HYPER_HEAD, hyperFlavor, hyperProbe,
  lockedVersions, mergeEntries, otelTypes, OTEL_STORAGE_STACK, parseArgs, parseDwarfdump, pickFields, pickStruct, qualifiedName, readDb, sortFields, StructInfo,
} from '../../tools/gen-layouts';

const ROOT = repoRoot();
const DB_FILE = path.join(ROOT, 'offsets', 'layouts.json');
const GENERATOR = path.join(__dirname, '..', '..', 'tools', 'gen-layouts.js');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layouts-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function installedRustc(): string {
  const out = execFileSync('rustc', ['--version'], { encoding: 'utf8' });
  const m = /^rustc (\S+) /.exec(out);
  assert.ok(m, `unexpected rustc --version output: ${out}`);
  return m[1];
}

/** The bytes version apps/Cargo.lock pins, read here independently of the generator. */
function lockedBytes(): string {
  const lock = fs.readFileSync(path.join(ROOT, 'apps', 'Cargo.lock'), 'utf8');
  const all = [...lock.matchAll(/\[\[package\]\]\nname = "bytes"\nversion = "([^"]+)"/g)].map((m) => m[1]);
  assert.equal(all.length, 1, `apps/Cargo.lock should lock exactly one bytes version, has ${all.join(', ')}`);
  return all[0];
}

/** The hyper versions apps/Cargo.lock pins, oldest first (numerically), read independently of the generator. */
function lockedHyper(): string[] {
  const lock = fs.readFileSync(path.join(ROOT, 'apps', 'Cargo.lock'), 'utf8');
  const all = [...lock.matchAll(/\[\[package\]\]\nname = "hyper"\nversion = "([^"]+)"/g)].map((m) => m[1]);
  assert.ok(all.length >= 1, 'apps/Cargo.lock should lock hyper');
  const num = (v: string) => v.split('.').map(Number);
  return all.sort((a, b) => { const [x, y] = [num(a), num(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
}

/** Versions of a crate apps/Cargo.lock pins, oldest first, read independently of the generator. */
function locked(name: string): string[] {
  const lock = fs.readFileSync(path.join(ROOT, 'apps', 'Cargo.lock'), 'utf8');
  const num = (v: string) => v.split('.').map(Number);
  return [...lock.matchAll(new RegExp(`\\[\\[package\\]\\]\\nname = "${name}"\\nversion = "([^"]+)"`, 'g'))].map((m) => m[1])
    .sort((a, b) => { const [x, y] = [num(a), num(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
}

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('generator against a real build', () => {
  test('regenerating for the installed rustc reproduces the committed entries exactly', { timeout: 900_000 }, (t) => {
    const rustc = installedRustc();
    const bytesVersion = lockedBytes();
    const hyperVersions = lockedHyper();
    const committed = readDb(DB_FILE);
    const forRustc = committed.entries.filter((e) => e.rustc === rustc);
    // What the default run (apps/Cargo.lock versions) must produce: the
    // bytes and hyper probes, h2 (and its http, bytes and tokio) from the hyper
    // builds, which serve HTTP/2 too, and the axum probes.
    const lockedOf = (c: string) => (c === 'bytes' ? [bytesVersion] : c === 'hyper' ? hyperVersions : locked(c));
    const expected = forRustc.filter((e) => e.crate === undefined || lockedOf(e.crate).includes(e.crateVersion!));
    const want: string[] = ['Vec<u8>@', `BytesMut@${bytesVersion}`, ...hyperVersions.flatMap((v) => [`${HYPER_ENCODE}@${v}`, `${HYPER_HEAD}@${v}`])];
    for (const t of [...H2_TYPES, ...TOKIO_TYPES, ...AXUM_TYPES]) for (const v of lockedOf(t.crate)) want.push(`${t.type}@${v}`);
    // opentelemetry: one of the two CURRENT_CONTEXT shapes per release (the build says which; the regeneration below must agree).
    for (const v of locked('opentelemetry')) {
      const stack = committed.entries.some((e) => e.type === OTEL_STORAGE_STACK && e.crateVersion === v && e.rustc === rustc);
      for (const t of otelTypes(stack)) want.push(`${t.type}@${v}`);
    }
    assert.deepEqual(expected.map((e) => `${e.type}@${e.crateVersion ?? ''}`).sort(), [...new Set(want)].sort(),
      `offsets/layouts.json lacks entries for rustc ${rustc} and the crate versions apps/Cargo.lock locks: run node dist/tools/gen-layouts.js`);
    // The database covers more hyper releases than the apps lock.
    assert.ok(forRustc.filter((e) => e.type === HYPER_ENCODE).length > hyperVersions.length, 'no older hyper releases in the database');

    // Seed the output with wrong values for what the run builds (must be
    // replaced), the committed entries of other hyper releases (kept as they
    // are), an entry of another rustc (kept) and a custom comment (kept).
    const other: LayoutEntry = { type: 'Vec<u8>', rustc: '0.9.0', fields: { ptr: 0, cap: 8, len: 16 }, size: 24 };
    const wrong = expected.map((e) => ({ ...e, fields: Object.fromEntries(Object.keys(e.fields).map((k) => [k, 99])), size: 1 }));
    const kept = forRustc.filter((e) => !expected.includes(e));
    const out = path.join(tmp, 'layouts.json');
    fs.writeFileSync(out, JSON.stringify({ comment: 'seeded', entries: [...wrong, other, ...kept].reverse() }));

    const t0 = Date.now();
    // Default versions: the ones in apps/Cargo.lock.
    const stdout = execFileSync(process.execPath, [GENERATOR, '--out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const took = Date.now() - t0;
    assert.match(stdout, new RegExp(`^gen-layouts: ${expected.length} entries for rustc ${re(rustc)} ` +
      `\\(bytes ${re(bytesVersion)}; hyper ${hyperVersions.map(re).join(', ')}; axum ${locked('axum').map(re).join(', ')}; opentelemetry ${locked('opentelemetry').map(re).join(', ')}\\) written to `));

    const text = fs.readFileSync(out, 'utf8');
    const got = JSON.parse(text) as { comment: string; entries: LayoutEntry[] };
    assert.deepEqual(got.entries.filter((e) => expected.some((x) => x.type === e.type && x.rustc === e.rustc && x.crateVersion === e.crateVersion)), expected);
    assert.deepEqual(got.entries, [other, ...forRustc]);
    assert.equal(got.comment, 'seeded');
    // Written in the database's own format.
    assert.equal(text, formatDb({ comment: 'seeded', entries: [other, ...forRustc] }));
    t.diagnostic(`gen-layouts took ${took} ms`);
  });

  test('committed hyper entries: Encode.head/req_method and MessageHead.subject/version for every hyper release', () => {
    const hyper = readDb(DB_FILE).entries.filter((e) => e.crate === 'hyper');
    assert.ok(hyper.length > 0);
    for (const e of hyper) {
      assert.ok(e.type === HYPER_ENCODE || e.type === HYPER_HEAD, e.type);
      const want = e.type === HYPER_ENCODE ? ['head', 'req_method'] : ['subject', 'version'];
      assert.deepEqual(Object.keys(e.fields).sort(), want, `${e.type} ${e.crateVersion}`);
      // Each Encode has its MessageHead for the same rustc and hyper version.
      assert.ok(hyper.some((x) => x.type !== e.type && x.rustc === e.rustc && x.crateVersion === e.crateVersion), `${e.type} ${e.crateVersion} has no partner`);
    }
    const r = installedRustc();
    const v = lockedHyper()[lockedHyper().length - 1];
    const pick = (type: string) => hyper.find((e) => e.type === type && e.rustc === r && e.crateVersion === v);
    if (r === '1.95.0' && v === '1.12.0') {
      // Seen in a debug build of the demo too.
      assert.deepEqual(pick(HYPER_ENCODE)?.fields, { head: 16, req_method: 24 });
      assert.deepEqual(pick(HYPER_HEAD)?.fields, { subject: 0x68, version: 0x6a });
    }
  });

  test('the committed file is in the generator\'s canonical format and order', () => {
    const text = fs.readFileSync(DB_FILE, 'utf8');
    const db = readDb(DB_FILE);
    assert.equal(db.comment, DEFAULT_COMMENT);
    assert.equal(formatDb({ comment: db.comment, entries: mergeEntries(db.entries, []) }), text);
  });

  test('bad arguments are one-line usage errors with exit code 2', () => {
    for (const [args, msg] of [
      [['--bogus'], 'gen-layouts: error: unknown argument "--bogus" (usage: gen-layouts [--out FILE] [--bytes-version X.Y.Z ...] [--hyper-version X.Y.Z ...] [--h2-version X.Y.Z ...] [--axum-version X.Y.Z ...] [--otel-version X.Y.Z ...])\n'],
      [['--bytes-version', 'abc'], 'gen-layouts: error: --bytes-version: "abc" is not a version like 1.12.1\n'],
      [['--hyper-version=1.x'], 'gen-layouts: error: --hyper-version: "1.x" is not a version like 1.12.1\n'],
      [['--hyper-version', '0.13.10'], 'gen-layouts: error: --hyper-version: 0.13.10 is not a hyper 0.14.x or 1.x version\n'],
      [['--out'], 'gen-layouts: error: --out needs a value (usage: gen-layouts [--out FILE] [--bytes-version X.Y.Z ...] [--hyper-version X.Y.Z ...] [--h2-version X.Y.Z ...] [--axum-version X.Y.Z ...] [--otel-version X.Y.Z ...])\n'],
      [['--hyper-version'], 'gen-layouts: error: --hyper-version needs a value (usage: gen-layouts [--out FILE] [--bytes-version X.Y.Z ...] [--hyper-version X.Y.Z ...] [--h2-version X.Y.Z ...] [--axum-version X.Y.Z ...] [--otel-version X.Y.Z ...])\n'],
    ] as const) {
      let err: (Error & { status?: number; stderr?: string }) | undefined;
      try {
        execFileSync(process.execPath, [GENERATOR, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) { err = e as typeof err; }
      assert.ok(err, `${args.join(' ')} succeeded`);
      assert.equal(err.status, 2);
      assert.equal(err.stderr, msg);
    }
  });

  test('a broken database file fails before building, with exit code 1', () => {
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, '{"entries": 3}');
    let err: (Error & { status?: number; stderr?: string }) | undefined;
    try {
      execFileSync(process.execPath, [GENERATOR, '--out', bad, '--bytes-version', '1.12.1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) { err = e as typeof err; }
    assert.ok(err);
    assert.equal(err.status, 1);
    assert.equal(err.stderr, `gen-layouts: error: ${bad} has no "entries" array\n`);
    assert.equal(fs.readFileSync(bad, 'utf8'), '{"entries": 3}');
  });
});

// Shaped like `llvm-dwarfdump --name=X --show-children --show-parents --recurse-depth=1`.
const DUMP = `bin:	file format elf64-x86-64

0x0000000b: DW_TAG_compile_unit
              DW_AT_producer	("clang LLVM (rustc version 1.95.0)")
              DW_AT_name	("src/main.rs/@/probe.cgu.0")

0x00001225:   DW_TAG_namespace
                DW_AT_name	("bytes")

0x0000122a:     DW_TAG_namespace
                  DW_AT_name	("bytes_mut")

0x0000122f:       DW_TAG_structure_type
                    DW_AT_name	("BytesMut")
                    DW_AT_byte_size	(0x20)
                    DW_AT_alignment	(8)

0x00001237:         DW_TAG_member
                      DW_AT_name	("ptr")
                      DW_AT_type	(0x00000486 "core::ptr::non_null::NonNull<u8>")
                      DW_AT_data_member_location	(0x00)

0x00001243:         DW_TAG_member
                      DW_AT_name	("len")
                      DW_AT_type	(0x0000009f "usize")
                      DW_AT_data_member_location	(0x08)

0x00001267:         DW_TAG_subprogram
                      DW_AT_name	("with_capacity")
                      DW_AT_declaration	(true)

0x0000127b:         NULL

0x00002000:   DW_TAG_namespace
                DW_AT_name	("other")

0x00002005:     DW_TAG_structure_type
                  DW_AT_name	("BytesMut")
                  DW_AT_byte_size	(0x08)

0x0000200d:       DW_TAG_member
                    DW_AT_name	("x")
                    DW_AT_type	(0x0000009f "usize")
                    DW_AT_data_member_location	(0x00)

0x00002019:       NULL

0x00003000: DW_TAG_compile_unit
              DW_AT_name	("bytes/src/lib.rs/@/bytes.cgu.2")

0x00003010:   DW_TAG_namespace
                DW_AT_name	("bytes")

0x00003015:     DW_TAG_namespace
                  DW_AT_name	("bytes_mut")

0x0000301a:       DW_TAG_structure_type
                    DW_AT_name	("BytesMut")
                    DW_AT_declaration	(true)

0x00003022:       DW_TAG_structure_type
                    DW_AT_name	("BytesMut")
                    DW_AT_byte_size	(0x20)

0x0000302a:         DW_TAG_member
                      DW_AT_name	("ptr")
                      DW_AT_type	(0x00003486 "core::ptr::non_null::NonNull<u8>")
                      DW_AT_data_member_location	(0x00)

0x00003036:         DW_TAG_member
                      DW_AT_name	("len")
                      DW_AT_type	(0x0000309f "usize")
                      DW_AT_data_member_location	(0x08)

0x00003042:         NULL
`;

describe('DWARF reading', () => {
  test('parseDwarfdump rebuilds the tree and qualified names', () => {
    const roots = parseDwarfdump(DUMP);
    assert.deepEqual(roots.map((r) => r.offset), [0x0b, 0x3000]);
    const bm = roots[0].children[0].children[0].children[0];
    assert.equal(bm.offset, 0x122f);
    assert.equal(bm.tag, 'DW_TAG_structure_type');
    assert.equal(qualifiedName(bm), 'bytes::bytes_mut::BytesMut');
    assert.deepEqual(bm.children.map((c) => [c.offset, c.tag]), [[0x1237, 'DW_TAG_member'], [0x1243, 'DW_TAG_member'], [0x1267, 'DW_TAG_subprogram']]);
    assert.equal(bm.children[1].attrs.get('DW_AT_data_member_location'), '0x08');
    assert.equal(qualifiedName(roots[0].children[1].children[0]), 'other::BytesMut');
  });

  test('pickStruct selects by qualified name, skips declarations, returns members with offsets and types', () => {
    const s = pickStruct(parseDwarfdump(DUMP), 'bytes::bytes_mut::BytesMut');
    assert.deepEqual(s, {
      name: 'BytesMut', size: 32,
      members: [
        { name: 'ptr', offset: 0, typeOffset: 0x486, typeName: 'core::ptr::non_null::NonNull<u8>' },
        { name: 'len', offset: 8, typeOffset: 0x9f, typeName: 'usize' },
      ],
    });
    assert.deepEqual(pickStruct(parseDwarfdump(DUMP), 'other::BytesMut').members.map((m) => m.name), ['x']);
    assert.throws(() => pickStruct(parseDwarfdump(DUMP), 'nope::BytesMut'), { message: 'no DWARF definition of nope::BytesMut in the build' });
  });

  test('pickStruct refuses compile units that disagree', () => {
    const conflicting = DUMP.replace('DW_AT_data_member_location\t(0x08)\n\n0x00003042', 'DW_AT_data_member_location\t(0x10)\n\n0x00003042');
    assert.notEqual(conflicting, DUMP);
    assert.throws(() => pickStruct(parseDwarfdump(conflicting), 'bytes::bytes_mut::BytesMut'),
      { message: 'the build has conflicting DWARF layouts of bytes::bytes_mut::BytesMut' });
  });

  const usize = (name: string, offset: number): StructInfo['members'][number] => ({ name, offset, typeOffset: 1, typeName: 'usize' });

  test('flattenFields follows Vec -> buf -> inner and adds offsets (rustc >= 1.80 shape)', () => {
    const types = new Map<number, StructInfo>([
      [0x100, { name: 'RawVec<u8, alloc::alloc::Global>', size: 16, members: [
        { name: 'inner', offset: 0, typeOffset: 0x200, typeName: 'RawVecInner' },
        { name: '_marker', offset: 16, typeOffset: 0x300, typeName: 'PhantomData<u8>' }] }],
      [0x200, { name: 'RawVecInner<alloc::alloc::Global>', size: 16, members: [
        { name: 'ptr', offset: 8, typeOffset: 0x400, typeName: 'Unique<u8>' }, usize('cap', 0),
        { name: 'alloc', offset: 16, typeOffset: 0x500, typeName: 'Global' }] }],
    ]);
    const asked: number[] = [];
    const vec: StructInfo = { name: 'Vec<u8, alloc::alloc::Global>', size: 24, members: [
      { name: 'buf', offset: 0, typeOffset: 0x100, typeName: 'RawVec' }, usize('len', 16)] };
    const f = flattenFields(vec, ['ptr', 'len', 'cap'], new Set(['buf', 'inner']), (o) => { asked.push(o); return types.get(o)!; });
    assert.deepEqual(f, { ptr: 8, cap: 0, len: 16 });
    assert.deepEqual(asked, [0x100, 0x200]);
    assert.deepEqual(Object.entries(sortFields(f)), [['cap', 0], ['ptr', 8], ['len', 16]]);
  });

  test('flattenFields handles the older RawVec { ptr, cap } shape with a non-zero wrapper offset', () => {
    const raw: StructInfo = { name: 'RawVec<u8, alloc::alloc::Global>', size: 16, members: [
      { name: 'ptr', offset: 0, typeOffset: 0x400, typeName: 'Unique<u8>' }, usize('cap', 8)] };
    const vec: StructInfo = { name: 'Vec<u8>', size: 24, members: [usize('len', 0), { name: 'buf', offset: 8, typeOffset: 0x100, typeName: 'RawVec' }] };
    assert.deepEqual(flattenFields(vec, ['ptr', 'len', 'cap'], new Set(['buf', 'inner']), () => raw), { len: 0, ptr: 8, cap: 16 });
  });

  test('flattenFields reports missing fields', () => {
    const vec: StructInfo = { name: 'Vec<u8>', size: 24, members: [usize('len', 16), { name: 'storage', offset: 0, typeOffset: 0x100, typeName: 'X' }] };
    assert.throws(() => flattenFields(vec, ['ptr', 'len', 'cap'], new Set(['buf', 'inner']), () => { throw new Error('must not descend'); }),
      { message: 'Vec<u8>: no ptr/cap field found through buf/inner' });
  });
});

// Shaped like llvm-dwarfdump-14 output for a hyper 1.12.0 probe build (members trimmed).
const HYPER_DUMP = `probe:	file format elf64-x86-64

0x0003f459: DW_TAG_compile_unit
              DW_AT_producer	("clang LLVM (rustc version 1.95.0 (59807616e 2026-04-14))")
              DW_AT_name	("src/main.rs/@/layout_probe.cgu.03")

0x00040019:   DW_TAG_namespace
                DW_AT_name	("hyper")

0x0004001e:     DW_TAG_namespace
                  DW_AT_name	("proto")

0x00040023:       DW_TAG_namespace
                    DW_AT_name	("h1")

0x0004122a:         DW_TAG_structure_type
                      DW_AT_name	("Encode<http::status::StatusCode>")
                      DW_AT_byte_size	(0x28)
                      DW_AT_accessibility	(DW_ACCESS_protected)
                      DW_AT_alignment	(8)

0x00041232:           DW_TAG_template_type_parameter
                        DW_AT_type	(0x0003ffaa "http::status::StatusCode")
                        DW_AT_name	("T")

0x0004123b:           DW_TAG_member
                        DW_AT_name	("head")
                        DW_AT_type	(0x0004d745 "hyper::proto::MessageHead<http::status::StatusCode> *")
                        DW_AT_alignment	(8)
                        DW_AT_data_member_location	(0x10)
                        DW_AT_accessibility	(DW_ACCESS_private)

0x00041247:           DW_TAG_member
                        DW_AT_name	("body")
                        DW_AT_type	(0x00042810 "core::option::Option<hyper::proto::BodyLength>")
                        DW_AT_alignment	(8)
                        DW_AT_data_member_location	(0x00)
                        DW_AT_accessibility	(DW_ACCESS_private)

0x00041260:           DW_TAG_member
                        DW_AT_name	("req_method")
                        DW_AT_type	(0x0004dd35 "core::option::Option<http::method::Method> *")
                        DW_AT_alignment	(8)
                        DW_AT_data_member_location	(0x18)
                        DW_AT_accessibility	(DW_ACCESS_private)

0x00041290:           NULL

0x00041365:       DW_TAG_structure_type
                    DW_AT_name	("MessageHead<http::status::StatusCode>")
                    DW_AT_byte_size	(0x70)
                    DW_AT_accessibility	(DW_ACCESS_protected)
                    DW_AT_alignment	(8)

0x0004136d:         DW_TAG_template_type_parameter
                      DW_AT_type	(0x0003ffaa "http::status::StatusCode")
                      DW_AT_name	("S")

0x00041376:         DW_TAG_member
                      DW_AT_name	("version")
                      DW_AT_type	(0x0003fdb5 "http::version::Version")
                      DW_AT_alignment	(1)
                      DW_AT_data_member_location	(0x6a)
                      DW_AT_accessibility	(DW_ACCESS_public)

0x00041382:         DW_TAG_member
                      DW_AT_name	("subject")
                      DW_AT_type	(0x0003ffaa "http::status::StatusCode")
                      DW_AT_alignment	(2)
                      DW_AT_data_member_location	(0x68)
                      DW_AT_accessibility	(DW_ACCESS_public)

0x0004138e:         DW_TAG_member
                      DW_AT_name	("headers")
                      DW_AT_type	(0x0003f594 "http::header::map::HeaderMap<http::header::value::HeaderValue>")
                      DW_AT_alignment	(8)
                      DW_AT_data_member_location	(0x00)
                      DW_AT_accessibility	(DW_ACCESS_public)

0x000413a6:         NULL
`;

describe('hyper types', () => {
  test('pickFields reads Encode.head/req_method and MessageHead.subject/version, in offset order', () => {
    const roots = parseDwarfdump(HYPER_DUMP);
    const enc = pickStruct(roots, 'hyper::proto::h1::Encode<http::status::StatusCode>');
    assert.equal(enc.size, 40);
    assert.deepEqual(Object.entries(pickFields(enc, ENCODE_FIELDS, 'Encode')), [['head', 16], ['req_method', 24]]);
    const head = pickStruct(roots, 'hyper::proto::MessageHead<http::status::StatusCode>');
    assert.equal(head.size, 112);
    assert.deepEqual(Object.entries(pickFields(head, HEAD_FIELDS, 'MessageHead')), [['subject', 104], ['version', 106]]);
    // `&mut T` spelled as rustc names the pointer type is accepted as well.
    const amp = { ...enc, members: enc.members.map((m) => ({ ...m, typeName: m.typeName.replace(/^(.*) \*$/, '&mut $1') })) };
    assert.deepEqual(pickFields(amp, ENCODE_FIELDS, 'Encode'), { head: 16, req_method: 24 });
  });

  test('pickFields refuses missing fields and fields of an unexpected type', () => {
    const head = pickStruct(parseDwarfdump(HYPER_DUMP), 'hyper::proto::MessageHead<http::status::StatusCode>');
    assert.throws(() => pickFields({ ...head, members: head.members.filter((m) => m.name !== 'subject') }, HEAD_FIELDS, 'MessageHead of hyper 9.9.9'),
      { message: 'MessageHead of hyper 9.9.9: no "subject" field' });
    const swapped = { ...head, members: head.members.map((m) => (m.name === 'subject' ? { ...m, typeName: 'u16' } : m)) };
    assert.throws(() => pickFields(swapped, HEAD_FIELDS, 'MessageHead'), { message: 'MessageHead: "subject" has type "u16", expected /^http::status::StatusCode$/' });
    const twice = { ...head, members: [...head.members, head.members[0]] };
    assert.throws(() => pickFields(twice, HEAD_FIELDS, 'MessageHead'), { message: 'MessageHead: more than one "version" field' });
  });

  test('probe programs: 1.x serves through hyper-util, 0.14 through Server::bind; both pin hyper exactly', () => {
    assert.equal(hyperFlavor('1.12.0'), '1');
    assert.equal(hyperFlavor('0.14.28'), '0.14');
    assert.equal(hyperFlavor('0.13.10'), undefined);
    assert.equal(hyperFlavor('2.0.0'), undefined);
    // Both serve HTTP/1 and HTTP/2, so one build gives hyper's and h2's types.
    const p1 = hyperProbe('1.4.1');
    assert.match(p1.cargoToml, /^hyper = \{ version = "=1\.4\.1", features = \["server", "http1", "http2"\] \}$/m);
    assert.match(p1.cargoToml, /^hyper-util = \{ version = "0\.1", features = \["server-auto", "tokio"\] \}$/m);
    assert.match(p1.cargoToml, /^\[profile\.release\]\ndebug = true$/m);
    assert.match(p1.mainRs, /auto::Builder::new\(TokioExecutor::new\(\)\)\.serve_connection\(TokioIo::new\(stream\), service_fn\(handle\)\)/);
    const p0 = hyperProbe('0.14.28');
    assert.match(p0.cargoToml, /^hyper = \{ version = "=0\.14\.28", features = \["server", "http1", "http2", "tcp", "runtime"\] \}$/m);
    assert.doesNotMatch(p0.cargoToml, /hyper-util/);
    assert.match(p0.mainRs, /Server::bind\(.*\)\.serve\(make\)/);
    // Same tokio features in both, so one compiled tokio serves every build.
    const tokio = (t: string) => /^tokio = .*$/m.exec(t)?.[0];
    assert.equal(tokio(p0.cargoToml), tokio(p1.cargoToml));
    assert.throws(() => hyperProbe('0.13.10'), { message: 'hyper 0.13.10: no probe program for it (0.14.x and 1.x only)' });
  });

  test('mergeEntries orders types Vec<u8>, BytesMut, Encode, MessageHead, then crate versions numerically', () => {
    const h = (type: string, crateVersion: string, rustc = '1.95.0'): LayoutEntry =>
      ({ type, rustc, crate: 'hyper', crateVersion, fields: { x: 0 }, size: 8 });
    const vec: LayoutEntry = { type: 'Vec<u8>', rustc: '1.95.0', fields: { ptr: 0 }, size: 24 };
    const bm: LayoutEntry = { type: 'BytesMut', rustc: '1.95.0', crate: 'bytes', crateVersion: '1.12.1', fields: { ptr: 0 }, size: 32 };
    const merged = mergeEntries([h(HYPER_HEAD, '1.12.0'), h(HYPER_ENCODE, '1.12.0'), h(HYPER_ENCODE, '1.4.1', '1.96.0'), bm],
      [h(HYPER_ENCODE, '0.14.32'), h(HYPER_HEAD, '1.4.1'), vec, h(HYPER_ENCODE, '1.4.1')]);
    assert.deepEqual(merged.map((e) => [e.rustc, e.type, e.crateVersion]), [
      ['1.95.0', 'Vec<u8>', undefined],
      ['1.95.0', 'BytesMut', '1.12.1'],
      ['1.95.0', HYPER_ENCODE, '0.14.32'],
      ['1.95.0', HYPER_ENCODE, '1.4.1'],
      ['1.95.0', HYPER_ENCODE, '1.12.0'],
      ['1.95.0', HYPER_HEAD, '1.4.1'],
      ['1.95.0', HYPER_HEAD, '1.12.0'],
      ['1.96.0', HYPER_ENCODE, '1.4.1'],
    ]);
  });
});

describe('database file handling', () => {
  const e = (type: LayoutEntry['type'], rustc: string, crateVersion?: string, ptr = 0): LayoutEntry =>
    crateVersion === undefined
      ? { type, rustc, fields: { ptr, len: 8, cap: 16 }, size: 24 }
      : { type, rustc, crate: 'bytes', crateVersion, fields: { ptr, len: 8, cap: 16, data: 24 }, size: 32 };

  test('mergeEntries replaces same type+rustc+crateVersion, keeps the rest, sorts numerically', () => {
    const existing = [e('BytesMut', '1.10.0', '1.12.1'), e('Vec<u8>', '1.9.0'), e('BytesMut', '1.9.0', '1.12.1'), e('Vec<u8>', '1.10.0')];
    const merged = mergeEntries(existing, [e('BytesMut', '1.9.0', '1.12.1', 8), e('BytesMut', '1.9.0', '1.2.0'), e('Vec<u8>', '1.10.0-nightly')]);
    assert.deepEqual(merged, [
      e('Vec<u8>', '1.9.0'),
      e('BytesMut', '1.9.0', '1.2.0'),
      e('BytesMut', '1.9.0', '1.12.1', 8),
      e('Vec<u8>', '1.10.0'),
      e('BytesMut', '1.10.0', '1.12.1'),
      e('Vec<u8>', '1.10.0-nightly'),
    ]);
  });

  test('formatDb writes one entry per line in a fixed key order', () => {
    const vec: LayoutEntry = { size: 24, fields: { cap: 0, ptr: 8, len: 16 }, rustc: '1.95.0', type: 'Vec<u8>' };
    assert.equal(formatDb({ comment: 'c "q"', entries: [vec, e('BytesMut', '1.95.0', '1.12.1')] }),
      '{\n  "comment": "c \\"q\\"",\n  "entries": [\n' +
      '    { "type": "Vec<u8>", "rustc": "1.95.0", "fields": { "cap": 0, "ptr": 8, "len": 16 }, "size": 24 },\n' +
      '    { "type": "BytesMut", "rustc": "1.95.0", "crate": "bytes", "crateVersion": "1.12.1", "fields": { "ptr": 0, "len": 8, "cap": 16, "data": 24 }, "size": 32 }\n' +
      '  ]\n}\n');
    assert.equal(formatDb({ comment: 'c', entries: [] }), '{\n  "comment": "c",\n  "entries": []\n}\n');
  });

  test('readDb: a missing file is empty; malformed files are rejected', () => {
    assert.deepEqual(readDb(path.join(tmp, 'missing.json')), { comment: DEFAULT_COMMENT, entries: [] });
    const f = path.join(tmp, 'm.json');
    fs.writeFileSync(f, '{"entries": [{"type": "Vec<u8>", "rustc": "1.95.0", "fields": {"ptr": "0"}, "size": 24}]}');
    assert.throws(() => readDb(f), { message: `${f}: entry 0 is malformed` });
    fs.writeFileSync(f, '{"entries": [], "extra": 1}');
    assert.throws(() => readDb(f), { message: `${f} has unexpected top-level key(s) extra` });
  });

  test('lockedVersions and the default bytes and hyper versions come from Cargo.lock', () => {
    const lock = '[[package]]\nname = "bytes"\nversion = "1.12.1"\nsource = "registry"\n\n[[package]]\nname = "bytes-utils"\nversion = "0.1.0"\n\n[[package]]\nname = "bytes"\nversion = "0.5.6"\n';
    assert.deepEqual(lockedVersions(lock, 'bytes'), ['0.5.6', '1.12.1']);
    // h2 comes with the hyper builds; axum versions from the lock.
    assert.deepEqual(parseArgs([], ROOT), { out: DB_FILE, bytesVersions: [lockedBytes()], hyperVersions: lockedHyper(), h2Versions: [], axumVersions: locked('axum'), otelVersions: locked('opentelemetry') });
    // With any version flag, only what is asked for is built.
    assert.deepEqual(parseArgs(['--out=x.json', '--bytes-version', '1.5.0', '--bytes-version=1.5.0', '--bytes-version', '1.0.0'], ROOT),
      { out: path.resolve('x.json'), bytesVersions: ['1.5.0', '1.0.0'], hyperVersions: [], h2Versions: [], axumVersions: [], otelVersions: [] });
    assert.deepEqual(parseArgs(['--hyper-version', '1.4.1', '--hyper-version=0.14.28', '--hyper-version', '1.4.1'], ROOT),
      { out: DB_FILE, bytesVersions: [], hyperVersions: ['1.4.1', '0.14.28'], h2Versions: [], axumVersions: [], otelVersions: [] });
    assert.deepEqual(parseArgs(['--h2-version', '0.4.10', '--axum-version=0.7.5'], ROOT),
      { out: DB_FILE, bytesVersions: [], hyperVersions: [], h2Versions: ['0.4.10'], axumVersions: ['0.7.5'], otelVersions: [] });
    assert.deepEqual(lockedVersions(fs.readFileSync(path.join(ROOT, 'apps', 'Cargo.lock'), 'utf8'), 'hyper'), lockedHyper());
  });
});

describe('resolveLayout and cookie bits', () => {
  test('committed database: exact rustc 1.95.0 matches for both types', () => {
    assert.deepEqual(resolveLayout('Vec<u8>', '1.95.0'),
      { type: 'Vec<u8>', source: 'db-exact', from: 'rustc 1.95.0', ptrIdx: 1, lenIdx: 2, capIdx: 0 });
    assert.deepEqual(resolveLayout('BytesMut', '1.95.0'),
      { type: 'BytesMut', source: 'db-exact', from: 'rustc 1.95.0', ptrIdx: 0, lenIdx: 1, capIdx: 2 });
  });

  /** Runs `fn` with the database replaced by `entries`. */
  function withDb(entries: LayoutEntry[], fn: () => void): void {
    const db = layoutDb();
    const saved = db.splice(0, db.length, ...entries);
    try { fn(); } finally { db.splice(0, db.length, ...saved); }
  }
  const vec = (rustc: string, ptr: number, len: number, cap: number): LayoutEntry =>
    ({ type: 'Vec<u8>', rustc, fields: { ptr: ptr * 8, len: len * 8, cap: cap * 8 }, size: 24 });
  const pick = (rustc: string | undefined): [ResolvedLayout['source'], string, number, number, number] | undefined => {
    const r = resolveLayout('Vec<u8>', rustc);
    return r && [r.source, r.from, r.ptrIdx, r.lenIdx, r.capIdx];
  };

  test('exact, nearest older, older than all, unknown, numeric ordering', () => {
    // Unsorted on purpose; 1.9.0 < 1.10.0 < 1.95.0 only when compared numerically.
    withDb([vec('1.95.0', 1, 2, 0), vec('1.10.0', 0, 1, 2), vec('1.97.0', 2, 0, 1), vec('1.9.0', 0, 2, 1)], () => {
      assert.deepEqual(pick('1.95.0'), ['db-exact', 'rustc 1.95.0', 1, 2, 0]);
      assert.deepEqual(pick('1.96.3'), ['db-nearest', 'rustc 1.95.0', 1, 2, 0]);
      assert.deepEqual(pick('1.120.0'), ['db-nearest', 'rustc 1.97.0', 2, 0, 1]);
      assert.deepEqual(pick('1.10.7'), ['db-nearest', 'rustc 1.10.0', 0, 1, 2]);
      assert.deepEqual(pick('1.9.0'), ['db-exact', 'rustc 1.9.0', 0, 2, 1]);
      assert.deepEqual(pick('1.8.0'), ['db-nearest', 'rustc 1.9.0', 0, 2, 1]);
      assert.deepEqual(pick('1.97.0-nightly'), ['db-exact', 'rustc 1.97.0', 2, 0, 1]);
      assert.deepEqual(pick(undefined), ['db-nearest', 'rustc 1.97.0', 2, 0, 1]);
      assert.equal(resolveLayout('BytesMut', '1.95.0'), undefined);
    });
    assert.equal(resolveLayout('BytesMut', '1.95.0')?.source, 'db-exact'); // restored
  });

  const L = (ptrIdx: number, lenIdx: number, capIdx: number): ResolvedLayout =>
    ({ type: 'Vec<u8>', source: 'db-exact', from: 'x', ptrIdx, lenIdx, capIdx });

  test('layoutCookieBits: ptr at bits 16-17, len at 18-19, cap at 20-21', () => {
    assert.equal(layoutCookieBits(L(1, 2, 0)), 0x90000n);
    assert.equal(layoutCookieBits(L(0, 1, 2)), 0x240000n);
    assert.equal(layoutCookieBits(L(3, 0, 0)), 0x30000n);
    assert.equal(layoutCookieBits(L(0, 3, 0)), 0xc0000n);
    assert.equal(layoutCookieBits(L(0, 0, 3)), 0x300000n);
    assert.equal(layoutCookieBits(L(0, 0, 0)), 0n);
  });

  test('events.h cookie macros decode what layoutCookieBits encodes, probe id untouched', () => {
    const cases: [number, number, number, number][] = [];
    for (let p = 0; p < 4; p++) for (let l = 0; l < 4; l++) for (let c = 0; c < 4; c++) cases.push([p, l, c, (p * 16 + l * 4 + c) * 997 % 65536]);
    const rows = cases.map(([p, l, c, id]) => `0x${(layoutCookieBits(L(p, l, c)) | BigInt(id)).toString(16)}ULL`);
    const src = `#include <stdio.h>\n#include "events.h"\nstatic const unsigned long long c[] = { ${rows.join(', ')} };\n` +
      'int main(void) { for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) ' +
      'printf("%u %u %u %u\\n", COOKIE_PTR_IDX(c[i]), COOKIE_LEN_IDX(c[i]), COOKIE_CAP_IDX(c[i]), (unsigned)COOKIE_PROBE_ID(c[i])); return 0; }\n';
    fs.writeFileSync(path.join(tmp, 'cookie.c'), src);
    execFileSync('cc', ['-I', path.join(ROOT, 'bpf', 'include'), '-o', path.join(tmp, 'cookie'), path.join(tmp, 'cookie.c')]);
    const out = execFileSync(path.join(tmp, 'cookie'), { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(out, cases.map(([p, l, c, id]) => `${p} ${l} ${c} ${id}`));
  });
});

// libotelctx: OpenTelemetry thread context (OTEP 4947) and process context
// (OTEP 4719) in C. Builds the library with `make -C libotelctx`, runs the C
// test programs from libotelctx/tests/ and checks their results exactly:
// ELF properties, byte layouts written by hand from the specifications, the
// torn-record check, pthread propagation under LD_PRELOAD (with valgrind),
// TRACEPARENT and OTEL_* from the environment, and the process context and
// thread records read from outside the process, as a profiler would.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { repoRoot } from '../../src/util/paths';

const LIB = path.join(repoRoot(), 'libotelctx');
const BUILD = path.join(LIB, 'build');
const SO = path.join(BUILD, 'libotelctx.so');
const prog = (name: string): string => path.join(BUILD, 'tests', name);

// Environment without anything libotelctx reads at load time.
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(e)) if (/^(OTEL_|OTELCTX_|TRACEPARENT$|TRACESTATE$|LD_PRELOAD$)/.test(k)) delete e[k];
  return { ...e, ...extra };
}

function run(file: string, args: string[], extra: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(file, args, { env: env(extra), encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
const kv = (s: string): Record<string, string> => Object.fromEntries(lines(s).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

// Hex of a byte sequence written by hand: hex pieces, and "'text'" for ASCII.
function bytes(...parts: string[]): string {
  return parts.map((p) => (p.startsWith("'") ? Buffer.from(p.slice(1, -1), 'utf8').toString('hex') : p.replace(/\s+/g, ''))).join('');
}
const rep = (hex: string, n: number): string => hex.repeat(n);

before(() => {
  execFileSync('make', ['-C', LIB], { stdio: 'pipe' });
});

// ---------------------------------------------------------------- ELF ----

interface Readelf {
  sections: { index: number; name: string; type: string; flags: string }[];
  dynsyms: { value: bigint; size: number; type: string; bind: string; vis: string; ndx: string; name: string }[];
  relocs: { section: string; offset: bigint; type: string; sym: string }[];
}

function readelf(file: string): Readelf {
  const out = execFileSync('readelf', ['-W', '--dyn-syms', '--relocs', '--sections', file], { encoding: 'utf8' });
  const r: Readelf = { sections: [], dynsyms: [], relocs: [] };
  let mode = '';
  let relSection = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('Section Headers:')) { mode = 'sections'; continue; }
    const rs = /^Relocation section '([^']+)'/.exec(line);
    if (rs) { mode = 'relocs'; relSection = rs[1]; continue; }
    if (/^Symbol table '\.dynsym'/.test(line)) { mode = 'dynsym'; continue; }
    if (/^Symbol table/.test(line)) { mode = ''; continue; }
    if (mode === 'sections') {
      const m = /^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const rest = m[4].trim().split(/\s+/); // addr off size es [flags] lk inf al
      r.sections.push({ index: Number(m[1]), name: m[2], type: m[3], flags: rest.length === 8 ? rest[4] : '' });
    } else if (mode === 'dynsym') {
      const m = /^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(line);
      if (m) r.dynsyms.push({ value: BigInt('0x' + m[1]), size: Number(m[2]), type: m[3], bind: m[4], vis: m[5], ndx: m[6], name: m[7] });
    } else if (mode === 'relocs') {
      const m = /^([0-9a-f]+)\s+([0-9a-f]+)\s+(R_\S+)(?:\s+[0-9a-f]+\s+(\S+))?/.exec(line);
      if (m) r.relocs.push({ section: relSection, offset: BigInt('0x' + m[1]), type: m[3], sym: m[4] ?? '' });
    }
  }
  return r;
}

test('libotelctx.so exports otel_thread_ctx_v1 as an 8-byte GLOBAL TLS symbol in .tbss, reached only through TLSDESC', () => {
  const e = readelf(SO);
  const syms = e.dynsyms.filter((s) => s.name === 'otel_thread_ctx_v1');
  assert.equal(syms.length, 1, 'exactly one .dynsym entry');
  const s = syms[0];
  assert.deepEqual({ type: s.type, bind: s.bind, vis: s.vis, size: s.size }, { type: 'TLS', bind: 'GLOBAL', vis: 'DEFAULT', size: 8 });
  const sec = e.sections.find((x) => x.index === Number(s.ndx));
  assert.ok(sec, `section ${s.ndx}`);
  assert.equal(sec.name, '.tbss');
  assert.equal(sec.type, 'NOBITS');
  assert.match(sec.flags, /T/, 'TLS section flag');
  const rel = e.relocs.filter((r) => r.sym.startsWith('otel_thread_ctx_v1'));
  assert.ok(rel.length >= 1, 'at least one dynamic relocation names the symbol');
  assert.deepEqual([...new Set(rel.map((r) => r.type))], ['R_X86_64_TLSDESC']);
  // No other TLS relocation at all (no module-level local-dynamic ones either).
  const tls = e.relocs.filter((r) => /TLS|TPOFF|DTPMOD|DTPOFF/.test(r.type));
  assert.deepEqual(tls.map((r) => `${r.type} ${r.sym}`), rel.map((r) => `${r.type} ${r.sym}`));
  // The version script: exactly the API, the TLS slot and the interposer are
  // exported, all unversioned (so pthread_create@GLIBC_* references bind to it).
  const exported = e.dynsyms.filter((x) => x.ndx !== 'UND' && x.bind === 'GLOBAL').map((x) => x.name).sort();
  assert.deepEqual(exported, [
    'otel_thread_ctx_v1', 'otelctx_attach', 'otelctx_clone', 'otelctx_current', 'otelctx_detach', 'otelctx_free',
    'otelctx_new', 'otelctx_parse_traceparent', 'otelctx_process_publish', 'otelctx_process_unpublish',
    'otelctx_process_update', 'otelctx_pthread_create', 'otelctx_set_attribute_keys', 'otelctx_update', 'pthread_create',
  ]);
});

test('every code reference to otel_thread_ctx_v1 in the objects is a TLSDESC sequence', () => {
  const objs = fs.readdirSync(path.join(BUILD, 'obj')).filter((f) => f.endsWith('.o'));
  const kinds = new Set<string>();
  for (const o of objs) {
    const out = execFileSync('readelf', ['-W', '--relocs', path.join(BUILD, 'obj', o)], { encoding: 'utf8' });
    let section = '';
    for (const line of out.split('\n')) {
      const rs = /^Relocation section '([^']+)'/.exec(line);
      if (rs) { section = rs[1]; continue; }
      if (section.startsWith('.rela.debug')) continue; // DWARF location of the variable
      const m = /^[0-9a-f]+\s+[0-9a-f]+\s+(R_\S+)\s+[0-9a-f]+\s+otel_thread_ctx_v1/.exec(line);
      if (m) kinds.add(m[1]);
      assert.doesNotMatch(line, /R_X86_64_(TPOFF|GOTTPOFF|DTPMOD|TLSGD|TLSLD)/, `${o}: ${line}`);
    }
  }
  assert.deepEqual([...kinds].sort(), ['R_X86_64_GOTPC32_TLSDESC', 'R_X86_64_TLSDESC_CALL']);
});

test('static link: the slot lives in the executable and is still exported in .dynsym', () => {
  const e = readelf(path.join(BUILD, 'example-static'));
  const s = e.dynsyms.find((x) => x.name === 'otel_thread_ctx_v1');
  assert.ok(s);
  assert.deepEqual({ type: s.type, bind: s.bind, size: s.size }, { type: 'TLS', bind: 'GLOBAL', size: 8 });
  assert.notEqual(s.ndx, 'UND');
  // GNU ld relaxes the TLSDESC sequences to initial-exec in a PIE (a
  // static access model readers must handle).
  assert.deepEqual(e.relocs.filter((r) => r.sym.startsWith('otel_thread_ctx_v1')).map((r) => r.type), ['R_X86_64_TPOFF64']);
});

test('make -C libotelctx is idempotent', () => {
  const out = execFileSync('make', ['-C', LIB], { encoding: 'utf8' });
  assert.doesNotMatch(out, /\bgcc\b|\bar\b/);
});

// ------------------------------------------------------ layout & bytes ----

test('record and mapping header layout', () => {
  const r = run(prog('tool'), ['layout'], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
  assert.equal(r.status, 0);
  assert.deepEqual(kv(r.stdout), {
    'record.size': '640', 'record.align': '2', 'record.trace_id': '0', 'record.span_id': '16', 'record.valid': '24',
    'record.trace_flags': '25', 'record.attrs_data_size': '26', 'record.attrs_data': '28',
    OTELCTX_RECORD_SIZE: '640', OTELCTX_MAX_ATTRS_DATA: '612', OTELCTX_HEADER_SIZE: '28',
    'header.size': '32', 'header.version': '8', 'header.payload_size': '12', 'header.monotonic_published_at_ns': '16',
    'header.payload': '24', 'new.align64': '1',
  });
});

// Records built by otelctx_new (and, identically, by otelctx_update in
// place), against bytes written from the OTEP 4947 table: trace-id, span-id,
// valid=1, trace-flags, attrs-data-size (u16 little endian on x86-64), then
// [key][len][value] entries.
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const a = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const recordVectors: { name: string; args: string[]; want: string }[] = [
  {
    name: 'ids, sampled, two attributes',
    args: [TRACE, SPAN, '1', `0:${a('GET')}`, `1:${a('/api/v1')}`],
    want: bytes(TRACE, SPAN, '01', '01', '0e00', '00 03', "'GET'", '01 07', "'/api/v1'"),
  },
  { name: 'no context at all', args: ['-', '-', '0'], want: bytes(rep('00', 24), '01', '00', '0000') },
  {
    name: 'random + sampled flags, empty value',
    args: [TRACE, SPAN, '3', `5:`],
    want: bytes(TRACE, SPAN, '01', '03', '0200', '05 00'),
  },
  {
    name: 'a 300-byte value is cut to 255',
    args: [TRACE, SPAN, '1', `2:${rep('61', 300)}`],
    want: bytes(TRACE, SPAN, '01', '01', '0101', '02 ff', rep('61', 255)),
  },
  {
    name: 'the 255-byte cut does not split a UTF-8 character',
    args: [TRACE, SPAN, '1', `2:${rep('61', 254)}c3a9`],
    want: bytes(TRACE, SPAN, '01', '01', '0001', '02 fe', rep('61', 254)),
  },
  {
    name: 'attributes are capped at 612 bytes, later entries dropped',
    args: [TRACE, SPAN, '0', `0:${rep('62', 255)}`, `1:${rep('62', 255)}`, `2:${rep('62', 255)}`, `3:${a('x')}`],
    want: bytes(TRACE, SPAN, '01', '00', '6402', '00 ff', rep('62', 255), '01 ff', rep('62', 255), '02 60', rep('62', 96)),
  },
  {
    name: 'the 612-byte cap cuts at a character boundary',
    args: [TRACE, SPAN, '0', `0:${rep('62', 255)}`, `1:${rep('62', 255)}`, `2:78${rep('c3a9', 100)}`, `3:${a('x')}`],
    want: bytes(TRACE, SPAN, '01', '00', '6302', '00 ff', rep('62', 255), '01 ff', rep('62', 255), '02 5f', '78', rep('c3a9', 47)),
  },
  { name: 'zero trace id with a span id is rejected', args: [rep('00', 16), SPAN, '1'], want: 'error EINVAL' },
  { name: 'trace id without a span id is rejected', args: [TRACE, rep('00', 8), '1'], want: 'error EINVAL' },
  { name: 'flags without ids are rejected', args: ['-', '-', '1'], want: 'error EINVAL' },
  { name: 'invalid UTF-8 is rejected', args: [TRACE, SPAN, '1', '0:c328'], want: 'error EINVAL' },
  { name: 'a UTF-16 surrogate is rejected', args: [TRACE, SPAN, '1', '0:eda080'], want: 'error EINVAL' },
];

for (const v of recordVectors) {
  test(`record bytes: ${v.name}`, () => {
    const r = run(prog('tool'), ['record', ...v.args], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
    assert.equal(r.status, 0, r.stderr);
    const out = lines(r.stdout);
    assert.equal(out[0], v.want);
    if (!v.want.startsWith('error')) assert.equal(out[1], 'update-same=1');
  });
}

test('otelctx_parse_traceparent follows the W3C rules', () => {
  const ok = (t: string, s: string, f: string) => `ok ${t} ${s} ${f}`;
  const bad = 'error EINVAL';
  const vectors: [string, string][] = [
    [`00-${TRACE}-${SPAN}-01`, ok(TRACE, SPAN, '01')],
    [`00-${TRACE}-${SPAN}-00`, ok(TRACE, SPAN, '00')],
    [`00-${TRACE}-${SPAN}-03`, ok(TRACE, SPAN, '03')],
    [` \t00-${TRACE}-${SPAN}-01 `, ok(TRACE, SPAN, '01')],
    [`01-${TRACE}-${SPAN}-01-future`, ok(TRACE, SPAN, '01')], // higher version: extra fields after '-'
    [`cc-${TRACE}-${SPAN}-09`, ok(TRACE, SPAN, '09')],
    [`01-${TRACE}-${SPAN}-01x`, bad],
    [`00-${TRACE}-${SPAN}-01-future`, bad], // version 00 is exactly 55 characters
    [`ff-${TRACE}-${SPAN}-01`, bad],
    [`00-${TRACE.toUpperCase()}-${SPAN}-01`, bad], // lowercase hex only
    [`00-${rep('0', 32)}-${SPAN}-01`, bad],
    [`00-${TRACE}-${rep('0', 16)}-01`, bad],
    [`00-${TRACE}-${SPAN}-0`, bad],
    [`00_${TRACE}-${SPAN}-01`, bad],
    [`00-${TRACE}-${SPAN}-0g`, bad],
    [`0-${TRACE}-${SPAN}-01`, bad],
    ['', bad],
  ];
  for (const [input, want] of vectors) {
    const r = run(prog('tool'), ['parse', input], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
    assert.equal(r.stdout.trim(), want, JSON.stringify(input));
  }
});

test('API behaviour', () => {
  const r = run(prog('tool'), ['api'], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
  assert.equal(r.status, 0, r.stderr);
  const checks = [
    'new.trace-zero-span-set.EINVAL', 'new.trace-set-span-zero.EINVAL', 'new.no-ids-flags.EINVAL', 'new.bad-utf8.EINVAL',
    'new.null-value.EINVAL', 'new.no-ids.empty-value', 'current.initially-null', 'detach.nothing', 'attach.first-returns-null',
    'current.is-a', 'attach.same-is-noop', 'attach.returns-previous', 'detach.returns-b', 'update.in-place',
    'update.bad-input-unchanged', 'clone.equal-and-distinct', 'free.attached-detaches', 'update.nothing-attached-allocates',
    'process.update-before-publish.ENOENT', 'process.unpublish-before-publish.ENOENT', 'process.reserved-key.EINVAL',
    'process.duplicate-key.EINVAL', 'process.bad-utf8.EINVAL', 'keys.set', 'keys.reorder.EINVAL', 'keys.remove.EINVAL',
    'keys.same-again', 'keys.append', 'keys.duplicate.EINVAL', 'process.publish', 'process.publish-again-updates',
    'process.singleton', 'process.update', 'process.unpublish', 'process.unpublished-no-mapping', 'process.republish',
  ];
  assert.deepEqual(lines(r.stdout), checks.map((c) => `${c}=ok`));
});

// --------------------------------------------------- process context ----

const PROTO = `
syntax = "proto3";
package t;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ProcessContext { Resource resource = 1; repeated KeyValue attributes = 2; }
`;
const ProcessContext = protobuf.parse(PROTO).root.lookupType('t.ProcessContext');

type Value = string | string[];
interface Decoded { resource: [string, Value][]; attributes: [string, Value][] }

function decodeContext(payload: Buffer): Decoded {
  const msg = ProcessContext.toObject(ProcessContext.decode(payload), { defaults: false }) as {
    resource?: { attributes?: { key: string; value: { stringValue?: string; arrayValue?: { values?: { stringValue: string }[] } } }[] };
    attributes?: { key: string; value: { stringValue?: string; arrayValue?: { values?: { stringValue: string }[] } } }[];
  };
  const conv = (list: NonNullable<typeof msg.attributes> = []): [string, Value][] =>
    list.map((x) => [x.key, x.value.arrayValue ? (x.value.arrayValue.values ?? []).map((v) => v.stringValue) : (x.value.stringValue as string)]);
  assert.ok(msg.resource, 'resource present');
  return { resource: conv(msg.resource.attributes), attributes: conv(msg.attributes) };
}

test('process context payload and header bytes, written by hand from the protobuf schema', () => {
  const r = run(prog('tool'), ['payload', '--key', 'http.route', '--key', 'user.id', '--res', 'service.name=svc', '--attr', 'a=b'], {
    OTELCTX_NO_PROCESS_CONTEXT: '1',
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const o = kv(r.stdout);
  assert.equal(o.mappings, '1');
  assert.equal(o.name, '/memfd:OTEL_CTX (deleted)');
  // ProcessContext{ resource(1) = Resource{ attributes(1) = KeyValue{ key(1), value(2) = AnyValue{ string_value(1) } } },
  //                 attributes(2) = KeyValue... }
  const want = bytes(
    '0a 17', /* resource, 23 bytes */ '0a 15', /* attributes[0], 21 bytes */
    '0a 0c', "'service.name'", '12 05', '0a 03', "'svc'",
    '12 08', /* attributes[0], 8 bytes */ '0a 01', "'a'", '12 03', '0a 01', "'b'",
    '12 2e', /* 46 bytes */ '0a 1a', "'threadlocal.schema_version'", '12 10', '0a 0e', "'tlsdesc_v1_dev'",
    '12 3c', /* 60 bytes */ '0a 1d', "'threadlocal.attribute_key_map'", '12 1b', /* AnyValue 27 */ '2a 19', /* array_value 25 */
    '0a 0c', '0a 0a', "'http.route'", '0a 09', '0a 07', "'user.id'",
  );
  assert.equal(o.payload, want);
  assert.deepEqual(decodeContext(Buffer.from(o.payload, 'hex')), {
    resource: [['service.name', 'svc']],
    attributes: [['a', 'b'], ['threadlocal.schema_version', 'tlsdesc_v1_dev'], ['threadlocal.attribute_key_map', ['http.route', 'user.id']]],
  });
  const size = want.length / 2;
  const h = Buffer.from(o.header, 'hex');
  assert.equal(h.length, 32);
  assert.equal(h.subarray(0, 16).toString('hex'), bytes("'OTEL_CTX'", '02000000', size.toString(16).padStart(2, '0') + '000000'));
  const ts = h.readBigUInt64LE(16);
  assert.ok(ts >= BigInt(o.boottime_before) && ts <= BigInt(o.boottime_after), 'CLOCK_BOOTTIME at publication');
  assert.equal(h.readBigUInt64LE(24), BigInt('0x' + o.payload_addr));
});

test('process context with no keys and an empty resource', () => {
  const r = run(prog('tool'), ['payload'], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
  assert.equal(kv(r.stdout).payload, bytes(
    '0a 00',
    '12 2e', '0a 1a', "'threadlocal.schema_version'", '12 10', '0a 0e', "'tlsdesc_v1_dev'",
    '12 23', '0a 1d', "'threadlocal.attribute_key_map'", '12 02', '2a 00',
  ));
});

test('process context published at load from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES', () => {
  const tl: [string, Value][] = [['threadlocal.schema_version', 'tlsdesc_v1_dev'], ['threadlocal.attribute_key_map', []]];
  const dump = (extra: Record<string, string>) => {
    const r = run(prog('tool'), ['dump'], extra);
    assert.equal(r.status, 0);
    const o = kv(r.stdout);
    return { mappings: o.mappings, ctx: o.payload ? decodeContext(Buffer.from(o.payload, 'hex')) : undefined, stderr: r.stderr };
  };
  let d = dump({ OTEL_SERVICE_NAME: 'svc', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod, team = a%2Cb%3Dc%20d ,service.name=ignored,k=%C3%A9' });
  assert.deepEqual(d.ctx, {
    resource: [['service.name', 'svc'], ['deployment.environment.name', 'prod'], ['team', 'a,b=c d'], ['k', 'é']],
    attributes: tl,
  });
  assert.equal(d.stderr, '');
  d = dump({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,x=1,x=2' });
  assert.deepEqual(d.ctx?.resource, [['service.name', 'from-attrs'], ['x', '2']]);
  d = dump({});
  assert.deepEqual(d.ctx?.resource, [['service.name', 'unknown_service:tool']]);
  d = dump({ OTEL_SERVICE_NAME: 'svc', OTEL_RESOURCE_ATTRIBUTES: 'a=1,b=%zz' });
  assert.deepEqual(d.ctx?.resource, [['service.name', 'svc']]);
  assert.equal(d.stderr, 'libotelctx: ignoring malformed OTEL_RESOURCE_ATTRIBUTES\n');
  d = dump({ OTEL_RESOURCE_ATTRIBUTES: 'novalue' });
  assert.equal(d.stderr, 'libotelctx: ignoring malformed OTEL_RESOURCE_ATTRIBUTES\n');
  d = dump({ OTELCTX_NO_PROCESS_CONTEXT: '1', OTEL_SERVICE_NAME: 'svc' });
  assert.equal(d.mappings, '0');
});

// An outside reader: /proc/<pid>/maps to find the mapping, /proc/<pid>/mem
// to read it, following the OTEP 4719 reading protocol.
interface MapLine { start: number; end: number; perms: string; offset: number; path: string }
function maps(pid: number): MapLine[] {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean).map((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+([0-9a-f]+)\s+\S+\s+\d+\s*(.*)$/.exec(l);
    assert.ok(m, l);
    return { start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], offset: parseInt(m[4], 16), path: m[5] };
  });
}
const CTX_NAMES = ['[anon_shmem:OTEL_CTX]', '[anon:OTEL_CTX]', '/memfd:OTEL_CTX'];
const ctxMappings = (pid: number) => maps(pid).filter((m) => CTX_NAMES.some((n) => m.path.startsWith(n)));

function readMem(fd: number, addr: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const got = fs.readSync(fd, b, 0, n, addr);
  if (got !== n) throw new Error(`short read at ${addr.toString(16)}`);
  return b;
}

type ReadResult = { ts: bigint; payload: Buffer } | { retry: string };
function readProcessContext(fd: number, addr: number): ReadResult {
  const h = readMem(fd, addr, 16);
  if (h.subarray(0, 8).toString('latin1') !== 'OTEL_CTX' || h.readUInt32LE(8) !== 2) return { retry: 'signature' };
  const ts = readMem(fd, addr + 16, 8).readBigUInt64LE(0);
  if (ts === 0n) return { retry: 'zero timestamp' };
  // (the read(2) calls are the fences)
  const size = readMem(fd, addr + 12, 4).readUInt32LE(0);
  const ptr = Number(readMem(fd, addr + 24, 8).readBigUInt64LE(0));
  if (size === 0 || size > 65536) return { retry: 'size' };
  let payload: Buffer;
  try {
    payload = readMem(fd, ptr, size);
  } catch {
    return { retry: 'payload unreadable' };
  }
  const ts2 = readMem(fd, addr + 16, 8).readBigUInt64LE(0);
  if (ts2 !== ts) return { retry: 'timestamp changed' };
  return { ts, payload };
}

function readConsistent(pid: number): { ts: bigint; ctx: Decoded } {
  const m = ctxMappings(pid);
  assert.equal(m.length, 1);
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (let i = 0; i < 100; i++) {
      const r = readProcessContext(fd, m[0].start);
      if ('ts' in r) return { ts: r.ts, ctx: decodeContext(r.payload) };
    }
  } finally {
    fs.closeSync(fd);
  }
  throw new Error('no consistent read');
}

// A long-running child with line-oriented stdout.
class Proc {
  readonly p: ChildProcessWithoutNullStreams;
  private buf = '';
  readonly out: string[] = [];
  private waiters: (() => void)[] = [];
  stderr = '';
  constructor(file: string, args: string[], extra: Record<string, string> = {}) {
    this.p = spawn(file, args, { env: env(extra), stdio: 'pipe' });
    this.p.stdout.setEncoding('utf8');
    this.p.stdout.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.out.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.waiters.splice(0).forEach((w) => w());
    });
    this.p.stderr.setEncoding('utf8');
    this.p.stderr.on('data', (d: string) => (this.stderr += d));
  }
  async line(pred: (l: string) => boolean, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.out.findIndex(pred);
      if (i >= 0) return this.out.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`timeout; got ${JSON.stringify(this.out)} ${this.stderr}`);
      await new Promise<void>((res) => { this.waiters.push(res); setTimeout(res, 200); });
    }
  }
  send(s: string): void { this.p.stdin.write(s + '\n'); }
  async exit(): Promise<number | null> {
    if (this.p.exitCode !== null) return this.p.exitCode;
    return new Promise((res) => this.p.on('exit', (code) => res(code)));
  }
}

test('process context read from outside: discovery, read protocol, updates, concurrent updates, unpublish', { timeout: 120_000 }, async () => {
  const p = new Proc(prog('procctx'), [], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
  try {
    const ready = JSON.parse(await p.line((l) => l.includes('"ready"'))) as { pid: number };
    const pid = ready.pid;
    const m = ctxMappings(pid);
    assert.equal(m.length, 1);
    assert.equal(m[0].path, '/memfd:OTEL_CTX (deleted)');
    assert.doesNotMatch(m[0].perms, /x/);
    const first = readConsistent(pid);
    assert.deepEqual(first.ctx, {
      resource: [['service.name', 'procctx-test'], ['service.version', '1.2.3'], ['service.instance.id', 'instance-0001']],
      attributes: [['example.extra', 'yes'], ['threadlocal.schema_version', 'tlsdesc_v1_dev'], ['threadlocal.attribute_key_map', ['http.route', 'user.id']]],
    });
    const uptimeNs = BigInt(Math.round(Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e9));
    assert.ok(first.ts > 0n && first.ts <= uptimeNs + 20_000_000n, 'CLOCK_BOOTTIME timestamp');

    p.send('update');
    assert.equal(await p.line((l) => l.startsWith('update')), 'updated');
    const second = readConsistent(pid);
    assert.ok(second.ts > first.ts, 'timestamp increased');
    assert.equal(ctxMappings(pid)[0].start, m[0].start, 'same mapping');
    assert.deepEqual(second.ctx, {
      resource: [['service.name', 'procctx-test'], ['service.version', '2.0.0'], ['deployment.environment.name', 'staging']],
      attributes: [['example.extra', 'no'], ['example.more', 'été'], ['threadlocal.schema_version', 'tlsdesc_v1_dev'], ['threadlocal.attribute_key_map', ['http.route', 'user.id']]],
    });

    p.send('keys');
    assert.equal(await p.line((l) => l.startsWith('keys')), 'keys');
    const third = readConsistent(pid);
    assert.ok(third.ts > second.ts);
    assert.deepEqual(third.ctx.attributes.at(-1), ['threadlocal.attribute_key_map', ['http.route', 'user.id', 'tenant']]);

    // Reader racing a writer that republishes as fast as it can: every read
    // the protocol accepts must decode to exactly one of the two contexts.
    const variantA = { resource: [['service.name', 'variant-a'], ['filler', 'A'.repeat(100)]] };
    const variantB = { resource: [['service.name', 'variant-b'], ['filler', 'B'.repeat(300)], ['extra', 'b']] };
    p.send('hammer 1500');
    const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
    let consistent = 0, retries = 0, lastTs = 0n, sawA = 0, sawB = 0;
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      const r = readProcessContext(fd, m[0].start);
      if (!('ts' in r)) { retries++; continue; }
      const c = decodeContext(r.payload);
      const res = JSON.stringify(c.resource);
      if (res === JSON.stringify(variantA.resource)) sawA++;
      else if (res === JSON.stringify(variantB.resource)) sawB++;
      else if (res !== JSON.stringify(third.ctx.resource)) assert.fail(`inconsistent payload accepted: ${res.slice(0, 200)}`);
      assert.ok(r.ts >= lastTs, 'timestamps never go back');
      lastTs = r.ts;
      consistent++;
    }
    fs.closeSync(fd);
    const hammered = await p.line((l) => l.startsWith('hammer'));
    const updates = Number(hammered.split(' ')[1]);
    console.log(`process context race: ${updates} updates, ${consistent} consistent reads (A ${sawA}, B ${sawB}), ${retries} retries`);
    assert.ok(updates > 1000);
    assert.ok(sawA + sawB > 100, 'enough reads during the race');

    p.send('unpublish');
    assert.equal(await p.line((l) => l.startsWith('unpublish')), 'unpublished');
    assert.equal(ctxMappings(pid).length, 0);
    p.send('exit');
    assert.equal(await p.exit(), 0);
  } finally {
    p.p.kill();
  }
});

test('fork: the child does not inherit the mapping and can publish its own', () => {
  const r = run(prog('forkctx'), []);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), [
    'parent.mappings=1',
    'child.mappings-after-fork=0',
    'child.update-before-publish=-1',
    'child.publish=0 mappings=1 child-payload=1',
    'parent.after-child mappings=1 parent-payload=1',
  ]);
});

// ------------------------------------------------------ thread context ----

test('torn-record check: a signal-driven reader never sees valid == 1 with a mixed record', { timeout: 120_000 }, () => {
  const res = (mode: string, secs: string) => {
    const r = run(prog('torn'), [mode, secs], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { mode: string; updates: number; samples: number; valid: number; invalid: number; null: number; torn: number };
    console.log(`torn ${mode}: ${JSON.stringify(j)}`);
    return j;
  };
  const inplace = res('inplace', '2');
  assert.ok(inplace.samples > 1000, 'samples');
  assert.ok(inplace.updates > 1000, 'updates');
  assert.equal(inplace.torn, 0);
  assert.equal(inplace.null, 0);
  assert.ok(inplace.invalid > 0, 'some samples landed inside an update (valid == 0) and were skipped');
  const swap = res('swap', '1');
  assert.ok(swap.samples > 1000);
  assert.equal(swap.torn, 0);
  assert.equal(swap.invalid, 0);
  // Negative control: the same writes without the valid protocol are caught.
  const control = res('control', '1');
  assert.ok(control.samples > 1000);
  assert.ok(control.torn > 0, 'the checker detects torn records');
});

const PROPAGATE_EXPECTED = (() => {
  const ids = (tb: number, sb: number) => [
    [...Array(16).keys()].map((i) => (tb + i).toString(16).padStart(2, '0')).join(''),
    [...Array(8).keys()].map((i) => (sb + i).toString(16).padStart(2, '0')).join(''),
  ];
  const d = (tb: number, sb: number, flags: number, attrs: string) => {
    const [t, s] = ids(tb, sb);
    return `valid=1 trace=${t} span=${s} flags=${flags} attrs=${attrs}`;
  };
  const A = d(0x11, 0x21, 1, bytes('00 03', "'GET'", '01 02', "'/a'"));
  const B = d(0x11, 0x51, 1, bytes('01 02', "'/b'"));
  const C = d(0x31, 0x41, 1, bytes('01 02', "'/c'"));
  const A2 = d(0x11, 0x29, 1, bytes('00 03', "'PUT'"));
  const OWN = d(0x61, 0x71, 0, '');
  return [
    'main-start none', 'none-thread none',
    `main ${A}`,
    `c1 ${A}`, 'c1 copy=yes', `c1-updated ${B}`, `g1 ${B}`, 'g1 copy=yes', `g1-updated ${C}`, `c1-after-g1 ${B}`,
    `main-after-c1 ${A}`,
    `main-updated ${A2}`, `c2 ${A}`,
    `c3 ${A2}`, 'c3 copy=yes', 'c3 exit=3',
    `c4 ${A2}`, 'c4 copy=yes', 'c4 canceled=yes',
    `c5 ${A2}`, 'c5 copy=yes', 'c5-after-free none',
    `c6 ${A2}`, 'c6 copy=yes', 'c6 prev-is-inherited=yes', `g7 ${OWN}`, 'g7 copy=yes', `c6-own ${OWN}`,
    `main-end ${A2}`, 'none-thread none', 'done',
  ];
})();

test('LD_PRELOAD: threads start with a copy of their creator\'s context', () => {
  const r = run(prog('propagate'), [], { LD_PRELOAD: SO });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), PROPAGATE_EXPECTED);
  assert.equal(r.stderr, '');
});

test('LD_PRELOAD under valgrind: inherited copies are freed on return, pthread_exit and cancellation', { timeout: 300_000 }, () => {
  const r = run('valgrind', ['--leak-check=full', '--errors-for-leak-kinds=definite', '--error-exitcode=1', prog('propagate')], { LD_PRELOAD: SO });
  const summary = r.stderr.split('\n').filter((l) => /definitely lost|indirectly lost|ERROR SUMMARY|in use at exit/.test(l)).map((l) => l.replace(/^==\d+== /, ''));
  console.log(`valgrind: ${summary.join('; ')}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), PROPAGATE_EXPECTED);
  assert.match(r.stderr, /definitely lost: 0 bytes in 0 blocks/);
  assert.match(r.stderr, /ERROR SUMMARY: 0 errors from 0 contexts/);
});

test('pthread_create interposer: dlsym failure gives EAGAIN and one warning, no crash', () => {
  const r = run(prog('dlsymfail'), [], { OTELCTX_NO_PROCESS_CONTEXT: '1' });
  assert.equal(r.status, 0);
  assert.deepEqual(lines(r.stdout), ['distinct=yes', 'call1=EAGAIN', 'call2=EAGAIN', 'helper=EAGAIN', 'libc=0']);
  assert.equal(r.stderr, 'libotelctx: dlsym(RTLD_NEXT, "pthread_create") failed; pthread_create returns EAGAIN\n');
});

test('TRACEPARENT: a valid value is attached to the main thread, a malformed one ignored with one warning', () => {
  const tp = `00-${TRACE}-${SPAN}-01`;
  let r = run(prog('envctx'), [], { LD_PRELOAD: SO, TRACEPARENT: tp, TRACESTATE: 'congo=t61rcWkgMzE' });
  assert.equal(r.status, 0);
  assert.deepEqual(lines(r.stdout), [`main valid=1 trace=${TRACE} span=${SPAN} flags=1 attrs=`, `child valid=1 trace=${TRACE} span=${SPAN} flags=1 attrs=`]);
  assert.equal(r.stderr, '');
  r = run(prog('envctx'), [], { LD_PRELOAD: SO, TRACEPARENT: `00-${TRACE}-${SPAN}-00` });
  assert.deepEqual(lines(r.stdout)[0], `main valid=1 trace=${TRACE} span=${SPAN} flags=0 attrs=`);
  for (const bad of [`00-${TRACE.toUpperCase()}-${SPAN}-01`, 'garbage', `00-${rep('0', 32)}-${SPAN}-01`]) {
    r = run(prog('envctx'), [], { LD_PRELOAD: SO, TRACEPARENT: bad });
    assert.equal(r.status, 0);
    assert.deepEqual(lines(r.stdout), ['main none', 'child none']);
    assert.equal(r.stderr, 'libotelctx: ignoring malformed TRACEPARENT\n');
  }
  r = run(prog('envctx'), [], { LD_PRELOAD: SO });
  assert.deepEqual(lines(r.stdout), ['main none', 'child none']);
  assert.equal(r.stderr, '');
});

// The example, read from outside like a profiler would: thread pointer of
// each stopped thread (ptrace), TLS offset from the ELF relocation and the
// loader-filled GOT, record bytes, key names from the process context.
interface Expected { tid: number; role: string; trace_id: string; span_id: string; trace_flags: number; attrs: Record<string, string> }

function decodeRecord(hex: string, keyMap: string[]): Omit<Expected, 'tid' | 'role'> & { valid: number } {
  const b = Buffer.from(hex, 'hex');
  const size = b.readUInt16LE(26);
  const attrs: Record<string, string> = {};
  const data = b.subarray(28, 28 + size);
  for (let off = 0; off + 2 <= data.length;) {
    const k = data[off], n = data[off + 1];
    if (off + 2 + n > data.length) break; // stop on a truncated entry
    if (k < keyMap.length) attrs[keyMap[k]] = data.subarray(off + 2, off + 2 + n).toString('utf8'); // last wins
    off += 2 + n;
  }
  return { valid: b[24], trace_id: b.subarray(0, 16).toString('hex'), span_id: b.subarray(16, 24).toString('hex'), trace_flags: b[25], attrs };
}

async function checkExampleFromOutside(binary: string, tpOffset: (pid: number) => bigint): Promise<void> {
  const p = new Proc(binary, []);
  try {
    const readyLine = await p.line((l) => l.includes('"ready"'));
    const ready = JSON.parse(readyLine) as { pid: number; threads: number; mode: string };
    const expected = p.out.splice(0).map((l) => JSON.parse(l) as Expected);
    assert.equal(expected.length, ready.threads);
    const { ctx } = readConsistent(ready.pid);
    assert.deepEqual(ctx.resource, [['service.name', 'otelctx-example'], ['service.version', '1.0.0']]);
    const keyMap = ctx.attributes.find(([k]) => k === 'threadlocal.attribute_key_map')?.[1] as string[];
    assert.deepEqual(keyMap, ['http.route', 'user.id']);
    assert.deepEqual(ctx.attributes.find(([k]) => k === 'threadlocal.schema_version'), ['threadlocal.schema_version', 'tlsdesc_v1_dev']);
    const off = tpOffset(ready.pid);
    const r = run(prog('tlsreader'), [String(ready.pid), off.toString()]);
    assert.equal(r.status, 0, r.stderr);
    const seen = lines(r.stdout).map((l) => JSON.parse(l) as { tid: number; ptr: string; record: string | null });
    assert.deepEqual(seen.map((s) => s.tid).sort(), expected.map((e) => e.tid).sort());
    for (const e of expected) {
      const s = seen.find((x) => x.tid === e.tid);
      assert.ok(s?.record, `thread ${e.tid} (${e.role}) has a record`);
      assert.equal(BigInt(s.ptr) % 64n, 0n, 'records are 64-byte aligned');
      assert.deepEqual(decodeRecord(s.record, keyMap), { valid: 1, trace_id: e.trace_id, span_id: e.span_id, trace_flags: e.trace_flags, attrs: e.attrs }, e.role);
    }
    // children see their worker's context (inherited through pthread_create)
    for (const c of expected.filter((e) => e.role.endsWith('.child'))) {
      const w = expected.find((e) => e.role === c.role.replace('.child', ''));
      assert.deepEqual({ ...c, tid: 0, role: '' }, { ...w, tid: 0, role: '' });
    }
    p.send('');
    assert.equal(await p.line((l) => l.includes('"exit"')), '{"exit":true}');
    assert.equal(await p.exit(), 0);
  } finally {
    p.p.kill();
  }
}

function loadBase(pid: number, file: string): number {
  const m = maps(pid).find((x) => x.path === file && x.offset === 0);
  assert.ok(m, `${file} mapped`);
  return m.start;
}

test('example (shared library, TLSDESC): an outside reader finds every thread\'s record', { timeout: 120_000 }, async () => {
  const reloc = readelf(SO).relocs.find((r) => r.type === 'R_X86_64_TLSDESC' && r.sym.startsWith('otel_thread_ctx_v1'));
  assert.ok(reloc);
  await checkExampleFromOutside(path.join(BUILD, 'example'), (pid) => {
    // TLSDESC: {resolver, argument}; for static TLS the argument is the
    // TP-relative offset (small and negative on x86-64).
    const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
    const arg = readMem(fd, loadBase(pid, SO) + Number(reloc.offset) + 8, 8).readBigInt64LE(0);
    fs.closeSync(fd);
    assert.ok(arg < 0n && arg > -(1n << 32n), `static TLS offset ${arg}`);
    return arg;
  });
});

test('example (static archive, initial-exec in the executable): an outside reader finds every thread\'s record', { timeout: 120_000 }, async () => {
  const exe = path.join(BUILD, 'example-static');
  const e = readelf(exe);
  const reloc = e.relocs.find((r) => r.type === 'R_X86_64_TPOFF64' && r.sym.startsWith('otel_thread_ctx_v1'));
  assert.ok(reloc);
  const sym = e.dynsyms.find((s) => s.name === 'otel_thread_ctx_v1');
  assert.ok(sym);
  const phdrs = execFileSync('readelf', ['-W', '-l', exe], { encoding: 'utf8' });
  const tls = /^\s*TLS\s+\S+\s+\S+\s+\S+\s+\S+\s+(0x[0-9a-f]+)\s+\S+\s+(0x[0-9a-f]+)/m.exec(phdrs);
  assert.ok(tls);
  const memsz = BigInt(tls[1]), align = BigInt(tls[2]);
  const localExec = sym.value - ((memsz + align - 1n) / align) * align; // x86-64 variant II
  await checkExampleFromOutside(exe, (pid) => {
    const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
    const got = readMem(fd, loadBase(pid, fs.realpathSync(exe)) + Number(reloc.offset), 8).readBigInt64LE(0);
    fs.closeSync(fd);
    assert.equal(got, localExec, 'the loader-filled GOT slot matches the PT_TLS computation');
    return got;
  });
});

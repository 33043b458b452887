// The BPF programs and the TS decoders must agree on every event byte. Each
// library's events.h is the single definition of its events: compile it
// (with the common header), print sizeof/offsetof of every field its
// decoders use, and compare with its layouts.ts. Event kinds must be unique
// across libraries and inside the range bpf/include/events.h gives each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LIBRARIES } from '../../src/libs';
import type { EventLayouts } from '../../src/libs/library';
import { COMMON_LAYOUTS } from '../../src/events/header';
import { H1_SERVER_LAYOUTS } from '../../src/libs/hyper-h1-server/layouts';
import { decodeRequest } from '../../src/libs/hyper-h1-server/decode';
import { repoRoot } from '../../src/util/paths';

function compileAndRun(src: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evlayout-'));
  try {
    fs.writeFileSync(path.join(dir, 'p.c'), src);
    execFileSync('cc', ['-I', path.join(repoRoot(), 'bpf', 'include'), '-o', path.join(dir, 'p'), path.join(dir, 'p.c')]);
    return execFileSync(path.join(dir, 'p'), { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function checkLayouts(header: string, layouts: EventLayouts): void {
  const lines: string[] = [];
  for (const [struct, fields] of Object.entries(layouts.structs)) {
    lines.push(`printf("${struct}.$size=%zu\\n", sizeof(struct ${struct}));`);
    for (const f of Object.keys(fields)) if (f !== '$size') lines.push(`printf("${struct}.${f}=%zu\\n", offsetof(struct ${struct}, ${f}));`);
  }
  for (const c of Object.keys(layouts.constants)) lines.push(`printf("${c}=%d\\n", (int)(${c}));`);
  for (const k of Object.keys(layouts.kinds)) lines.push(`printf("EV_${k}=%d\\n", (int)(EV_${k}));`);
  const out = compileAndRun(`#include <stdio.h>\n#include <stddef.h>\n#include "${header}"\nint main(void){\n${lines.join('\n')}\nreturn 0;}\n`);
  const actual = Object.fromEntries(out.trim().split('\n').filter(Boolean).map((l) => { const [k, v] = l.split('='); return [k, Number(v)]; }));
  const expected: Record<string, number> = {};
  for (const [struct, fields] of Object.entries(layouts.structs)) for (const [f, v] of Object.entries(fields)) expected[`${struct}.${f}`] = v;
  for (const [c, v] of Object.entries(layouts.constants)) expected[c] = v;
  for (const [k, v] of Object.entries(layouts.kinds)) expected[`EV_${k}`] = v;
  assert.deepEqual(actual, expected);
}

test('the common event header and counters in bpf/include/events.h match src/events/header.ts', () => {
  checkLayouts(path.join(repoRoot(), 'bpf', 'include', 'events.h'), COMMON_LAYOUTS);
});

for (const lib of LIBRARIES) {
  // A library without probes has no events.
  if (Object.keys(lib.layouts.kinds).length === 0 && Object.keys(lib.layouts.structs).length === 0) continue;
  test(`${lib.name}: events.h matches its layouts.ts`, () => {
    const header = path.join(repoRoot(), 'src', 'libs', lib.name, 'events.h');
    assert.ok(fs.existsSync(header), `${header} exists`);
    checkLayouts(header, lib.layouts);
  });
}

test('event kinds are unique across libraries and inside each library\'s range', () => {
  const text = fs.readFileSync(path.join(repoRoot(), 'bpf', 'include', 'events.h'), 'utf8');
  const ranges = new Map<string, [number, number]>();
  for (const m of text.matchAll(/0x([0-9a-f]{2})-0x([0-9a-f]{2})\s+([a-z0-9-]+)/g)) ranges.set(m[3], [parseInt(m[1], 16), parseInt(m[2], 16)]);
  const seen = new Map<number, string>();
  for (const lib of LIBRARIES) {
    if (Object.keys(lib.layouts.kinds).length === 0) continue;
    const r = ranges.get(lib.name);
    assert.ok(r, `bpf/include/events.h gives ${lib.name} a range of kinds`);
    for (const [k, v] of Object.entries(lib.layouts.kinds)) {
      assert.ok(v >= r[0] && v <= r[1], `${lib.name} ${k}=${v} inside 0x${r[0].toString(16)}-0x${r[1].toString(16)}`);
      assert.equal(seen.get(v), undefined, `kind ${v} (${lib.name} ${k}) is not also used by ${seen.get(v)}`);
      seen.set(v, lib.name);
    }
  }
});

test('hyper-h1-server: decodeRequest reads a request record laid out as the C struct', () => {
  const S = H1_SERVER_LAYOUTS.structs.h1_request_event;
  const head = Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
  const buf = Buffer.alloc(S.head + head.length);
  buf.writeUInt16LE(H1_SERVER_LAYOUTS.kinds.H1_SERVER_REQUEST, 0);
  buf.writeUInt16LE(7, 2);
  buf.writeUInt32LE(1234, 4);
  buf.writeUInt32LE(1235, 8);
  buf.writeUInt16LE(1, 12);
  buf.writeUInt16LE(3, 14);
  buf.writeBigUInt64LE(99n, 16);
  buf.writeBigUInt64LE(0x7fff_dead_0000n, S.buf_addr);
  for (let i = 0; i < H1_SERVER_LAYOUTS.constants.H1_CTX_WORDS; i++) buf.writeBigUInt64LE(BigInt(i + 1) << 33n, S.ctx_words + i * 8);
  buf.writeUInt32LE(head.length, S.buf_len);
  buf.writeUInt32LE(head.length, S.captured);
  head.copy(buf, S.head);
  const ev = decodeRequest(new DataView(buf.buffer, buf.byteOffset, buf.length), 0, buf.length);
  assert.deepEqual(ev.hdr, { kind: 1, probeId: 7, pid: 1234, tid: 1235, cpu: 1, instance: 3, tsNs: 99n });
  assert.equal(ev.bufAddr, 0x7fff_dead_0000);
  assert.deepEqual(ev.ctxWords, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => i * 2 ** 33));
  assert.equal(ev.head.toString(), head.toString());
});

test('hyper-h1-server: decodeRequest rejects records whose capture length overflows the record', () => {
  const S = H1_SERVER_LAYOUTS.structs.h1_request_event;
  const buf = Buffer.alloc(S.head + 4);
  buf.writeUInt16LE(H1_SERVER_LAYOUTS.kinds.H1_SERVER_REQUEST, 0);
  buf.writeUInt32LE(100, S.captured);
  assert.throws(() => decodeRequest(new DataView(buf.buffer, buf.byteOffset, buf.length), 0, buf.length), /overflows/);
});

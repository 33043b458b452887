// The BPF programs and the TS decoders must agree on every event byte. The
// header is the single definition: compile it, print sizeof/offsetof of every
// field the decoders use, and compare with src/events/layouts.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { STRUCTS, CONSTANTS, EVENT_KIND } from '../../src/events/layouts';
import { decodeEvent } from '../../src/events/decode';
import { repoRoot } from '../../src/util/paths';

function compileAndRun(src: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evlayout-'));
  fs.writeFileSync(path.join(dir, 'p.c'), src);
  execFileSync('cc', ['-I', path.join(repoRoot(), 'bpf', 'include'), '-o', path.join(dir, 'p'), path.join(dir, 'p.c')]);
  const out = execFileSync(path.join(dir, 'p'), { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

test('event structs in bpf/include/events.h match the TS decoder layouts', () => {
  const lines: string[] = [];
  for (const [struct, fields] of Object.entries(STRUCTS)) {
    lines.push(`printf("${struct}.$size=%zu\\n", sizeof(struct ${struct}));`);
    for (const f of Object.keys(fields)) if (f !== '$size') lines.push(`printf("${struct}.${f}=%zu\\n", offsetof(struct ${struct}, ${f}));`);
  }
  for (const c of Object.keys(CONSTANTS)) lines.push(`printf("${c}=%d\\n", (int)(${c}));`);
  for (const k of Object.keys(EVENT_KIND)) lines.push(`printf("EV_${k}=%d\\n", (int)(EV_${k}));`);
  const out = compileAndRun(`#include <stdio.h>\n#include <stddef.h>\n#include "events.h"\nint main(void){\n${lines.join('\n')}\nreturn 0;}\n`);
  const actual = Object.fromEntries(out.trim().split('\n').map((l) => { const [k, v] = l.split('='); return [k, Number(v)]; }));
  const expected: Record<string, number> = {};
  for (const [struct, fields] of Object.entries(STRUCTS)) for (const [f, v] of Object.entries(fields)) expected[`${struct}.${f}`] = v;
  for (const [c, v] of Object.entries(CONSTANTS)) expected[c] = v;
  for (const [k, v] of Object.entries(EVENT_KIND)) expected[`EV_${k}`] = v;
  assert.deepEqual(actual, expected);
});

test('decodeEvent reads a request record laid out as the C struct', () => {
  const S = STRUCTS.h1_request_event;
  const head = Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
  const buf = Buffer.alloc(S.head + head.length);
  buf.writeUInt16LE(EVENT_KIND.H1_SERVER_REQUEST, 0);
  buf.writeUInt16LE(7, 2);
  buf.writeUInt32LE(1234, 4);
  buf.writeUInt32LE(1235, 8);
  buf.writeUInt16LE(1, 12);
  buf.writeUInt16LE(3, 14);
  buf.writeBigUInt64LE(99n, 16);
  buf.writeBigUInt64LE(0xdead0000n, S.buf_addr);
  for (let i = 0; i < CONSTANTS.H1_CTX_WORDS; i++) buf.writeBigUInt64LE(BigInt(i + 1), S.ctx_words + i * 8);
  buf.writeUInt32LE(head.length, S.buf_len);
  buf.writeUInt32LE(head.length, S.captured);
  head.copy(buf, S.head);
  const ev = decodeEvent(new DataView(buf.buffer, buf.byteOffset, buf.length), 0, buf.length);
  assert.equal(ev.type, 'h1.request');
  if (ev.type !== 'h1.request') return;
  assert.deepEqual(ev.hdr, { kind: 1, probeId: 7, pid: 1234, tid: 1235, cpu: 1, instance: 3, tsNs: 99n });
  assert.equal(ev.bufAddr, 0xdead0000n);
  assert.deepEqual(ev.ctxWords, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  assert.equal(ev.head.toString(), head.toString());
});

test('decodeEvent rejects records whose capture length overflows the record', () => {
  const S = STRUCTS.h1_request_event;
  const buf = Buffer.alloc(S.head + 4);
  buf.writeUInt16LE(EVENT_KIND.H1_SERVER_REQUEST, 0);
  buf.writeUInt32LE(100, S.captured);
  assert.throws(() => decodeEvent(new DataView(buf.buffer, buf.byteOffset, buf.length), 0, buf.length), /overflows/);
});

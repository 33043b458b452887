// Event recordings (make bench-pipeline) keep the process-memory reads next to
// the ring records, and a replay answers the same reads from them; a process
// whose /proc/PID/mem cannot be opened is not retried on every read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventRecorder, readRecording, readRecordedMemory } from '../../src/events/recording';
import { ProcessMemory, memoryTap } from '../../src/targets/memory';

test('a recording round-trips its ring records and its memory reads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rec-test-'));
  const file = path.join(dir, 'events.bin');
  const rec = new EventRecorder(file);
  const ev = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  rec.add(new DataView(ev.buffer, ev.byteOffset, ev.length), 1, 9);
  memoryTap.record?.(0x7f0000001000, Buffer.from('/users/{id}'));
  rec.close();
  assert.equal(memoryTap.record, undefined);
  const { data, records } = readRecording(file);
  assert.equal(records.length, 1);
  assert.deepEqual([...data.subarray(records[0].off, records[0].off + records[0].len)], [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const lookup = readRecordedMemory(file);
  assert.equal(lookup(0x7f0000001000, 11)?.toString(), '/users/{id}');
  assert.equal(lookup(0x7f0000001000, 10), undefined);
  assert.equal(readRecordedMemory(path.join(dir, 'none.bin'))(0x7f0000001000, 11), undefined);
  memoryTap.replay = lookup;
  try {
    assert.equal(new ProcessMemory().read(999_999_999, 0x7f0000001000, 11)?.toString(), '/users/{id}');
  } finally {
    memoryTap.replay = undefined;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a process whose memory cannot be opened is not retried on every read', () => {
  const mem = new ProcessMemory();
  // The module object itself (the namespace import's bindings are getters onto it).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeFs = require('node:fs') as { openSync: typeof fs.openSync };
  const open = nodeFs.openSync;
  let opens = 0;
  nodeFs.openSync = ((...a: Parameters<typeof fs.openSync>) => { opens++; return open(...a); }) as typeof fs.openSync;
  try {
    for (let i = 0; i < 100; i++) assert.equal(mem.read(999_999_999, 0x7f0000001000, 16), undefined);
    mem.forget(999_999_999);
    assert.equal(mem.read(999_999_999, 0x7f0000001000, 16), undefined);
  } finally {
    nodeFs.openSync = open;
  }
  assert.ok(opens <= 3, `opened ${opens} times`);
});

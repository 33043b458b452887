// The shared context's client-call table (src/spans/context.ts rule 6): calls
// filed in the caller's task, taken by the library that sees the wire request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerSpanContext, type ActiveServerSpan } from '../../src/spans/context';
import { acquireRecord } from '../../src/spans/record';

const PID = 91;

function serverSpan(task: number, ctx: ServerSpanContext, s0: number): ActiveServerSpan {
  const rec = acquireRecord();
  rec.t0 = 1; rec.t1 = 2; rec.t2 = 3; rec.t3 = 4; rec.s0 = s0; rec.s1 = 6; rec.flags = 1;
  const span = { pid: PID, rec, route: undefined, open: true, finish() {} };
  ctx.addKey(span, 'task', task);
  return span;
}
const at = (mono: number) => ({ mono, tsLo: mono, tsHi: 0 });

test('the latest call filed before the wire request is taken, with the parent of their task; earlier ones stay for later wire requests', () => {
  const ctx = new ServerSpanContext({ libraryActive: () => true });
  serverSpan(7, ctx, 100);
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(10) });
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(20) });
  assert.equal(ctx.takeClientCall(PID, 'grpc /a.S/M', 5), undefined, 'a call made after the request is not its call');
  assert.equal(ctx.takeClientCall(PID, 'grpc /a.S/N', 30), undefined, 'another key');
  assert.equal(ctx.takeClientCall(PID + 1, 'grpc /a.S/M', 30), undefined, 'another process');
  const a = ctx.takeClientCall(PID, 'grpc /a.S/M', 30)!;
  assert.equal(a.call.mono, 20);
  assert.equal(a.ambiguous, false, 'the other waiting call is from the same task');
  assert.deepEqual([a.call.parent, a.call.s0, a.call.s1], [true, 100, 6]);
  assert.equal(ctx.takeClientCall(PID, 'grpc /a.S/M', 30)!.call.mono, 10);
  assert.equal(ctx.takeClientCall(PID, 'grpc /a.S/M', 30), undefined);
  // Responses in any order: calls at 10 and 20, wire requests encoded at 15
  // and 25, the later one answered first. Oldest-first gave it the call at
  // 10 and left the wire request of 15 nothing filed before it.
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(10) });
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(20) });
  assert.equal(ctx.takeClientCall(PID, 'grpc /a.S/M', 25)!.call.mono, 20);
  assert.equal(ctx.takeClientCall(PID, 'grpc /a.S/M', 15)!.call.mono, 10);
});

test('calls under one key from different tasks waiting at once: the take says ambiguous', () => {
  const ctx = new ServerSpanContext({ libraryActive: () => true });
  serverSpan(7, ctx, 100);
  serverSpan(8, ctx, 200);
  ctx.fileClientCall(PID, 'http h:1 /x', { task: 7, ...at(10) });
  ctx.fileClientCall(PID, 'http h:1 /x', { task: 8, ...at(11) });
  assert.equal(ctx.takeClientCall(PID, 'http h:1 /x', 12)!.ambiguous, true);
  assert.equal(ctx.takeClientCall(PID, 'http h:1 /x', 12)!.ambiguous, false, 'alone now');
});

test("a task's new call drops its waiting calls under the key made under another server span (they never reached the wire)", () => {
  const ctx = new ServerSpanContext({ libraryActive: () => true });
  const first = serverSpan(7, ctx, 100);
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(10) });
  ctx.close(first);
  serverSpan(7, ctx, 300); // the task's next request
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(20) });
  assert.equal(ctx.counts.clientCallsDropped, 1);
  const m = ctx.takeClientCall(PID, 'grpc /a.S/M', 30)!;
  assert.equal(m.call.mono, 20);
  assert.equal(m.call.s0, 300);
});

test('calls waiting longer than twice the client timeout are dropped and counted', () => {
  const ctx = new ServerSpanContext({ libraryActive: () => true });
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 0, ...at(10) });
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 0, ...at(1000) });
  assert.equal(ctx.expireClientCalls(1500, 500), 1);
  assert.equal(ctx.counts.clientCallsDropped, 1);
  const m = ctx.takeClientCall(PID, 'grpc /a.S/M', 2000)!;
  assert.equal(m.call.mono, 1000);
  assert.equal(m.call.parent, false, 'no task: no parent');
});

test('a failure in a task (connect error) takes that task\'s oldest waiting call, only when its waiting calls are interchangeable', () => {
  const ctx = new ServerSpanContext({ libraryActive: () => true });
  serverSpan(7, ctx, 100);
  serverSpan(8, ctx, 200);
  ctx.fileClientCall(PID, 'http h:1 /x', { task: 7, ...at(10) });
  ctx.fileClientCall(PID, 'http h:1 /x', { task: 8, ...at(11) });
  ctx.fileClientCall(PID, 'http h:1 /x', { task: 7, ...at(12) });
  assert.equal(ctx.takeTaskCall(PID, 7, 5, 'http '), undefined, 'no call of that task made before the failure');
  assert.equal(ctx.takeTaskCall(PID, 9, 50, 'http '), undefined, 'another task');
  assert.equal(ctx.takeTaskCall(PID, 0, 50, 'http '), undefined, 'outside any task');
  // A tonic call of the same task is not a reqwest failure's call.
  ctx.fileClientCall(PID, 'grpc /a.S/M', { task: 7, ...at(10) });
  const a = ctx.takeTaskCall(PID, 7, 50, 'http ');
  assert.ok(a && a !== 'ambiguous');
  assert.deepEqual([a.key, a.call.mono, a.call.s0], ['http h:1 /x', 10, 100]);
  // Task 8's call is untouched; task 7 now has one call under another key too.
  ctx.fileClientCall(PID, 'http h:2 /y', { task: 7, ...at(13) });
  assert.equal(ctx.takeTaskCall(PID, 7, 50, 'http '), 'ambiguous', 'which of two different calls failed is not known');
  const g = ctx.takeTaskCall(PID, 7, 50, 'grpc ');
  assert.ok(g && g !== 'ambiguous' && g.key === 'grpc /a.S/M', 'the tonic call, by itself under its prefix');
  // Task 8's call is still there: the wire request takes the latest (task 7's at 12) and, task 8's waiting too, is ambiguous.
  const b = ctx.takeClientCall(PID, 'http h:1 /x', 50)!;
  assert.deepEqual([b.call.mono, b.call.s0, b.ambiguous], [12, 100, true]);
  const c = ctx.takeClientCall(PID, 'http h:1 /x', 50)!;
  assert.deepEqual([c.call.mono, c.call.s0, c.ambiguous], [11, 200, false]);
});

// `otel-rust-agent ctx --pid`: the process and thread contexts published by
// libotelctx, read from outside: on the C example (shared library with
// TLSDESC, and the static archive where the linker relaxed to initial-exec),
// and on an unmodified Rust program run with LD_PRELOAD and TRACEPARENT.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { repoRoot, appBinary } from '../helpers/rustbuild';
import { runAgentSync, Output } from '../helpers/procs';

const LIB = path.join(repoRoot(), 'libotelctx');
const SO = path.join(LIB, 'build', 'libotelctx.so');

before(() => { execFileSync('make', ['-s', '-C', LIB], { stdio: 'inherit' }); });

interface Expected { tid: number; trace_id: string; span_id: string; trace_flags: number; attrs: Record<string, string> }
interface CtxJson {
  processContext: { resource: Record<string, unknown>; attributes: Record<string, unknown>; mappingName: string } | null;
  keyMap: string[];
  modules: { path: string; locator: { kind: string; model: string }; threads: { tid: number; traceId?: string; spanId?: string; traceFlags?: number; attributes?: Record<string, string>; recordAddress: unknown }[] }[];
}

async function startHeld(cmd: string, args: string[], env: Record<string, string>, readyRe: RegExp) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new Output(proc.stdout);
  const err = new Output(proc.stderr);
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  await Promise.race([out.wait(readyRe, 20_000), exited.then((c) => { throw new Error(`${cmd} exited with ${c}: ${err.text}`); })]);
  return { proc, out, err, async release() { proc.stdin!.end(); await exited; } };
}

function ctxJson(pid: number): CtxJson {
  const r = runAgentSync(['ctx', '--pid', String(pid), '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CtxJson;
}

for (const variant of ['example', 'example-static'] as const) {
  test(`ctx reads every thread of the C ${variant} exactly as it published them`, async () => {
    const ex = await startHeld(path.join(LIB, 'build', variant), [], {}, /"ready":true/);
    try {
      const lines = ex.out.text.trim().split('\n').map((l) => JSON.parse(l));
      const pid: number = lines.find((l) => l.ready).pid;
      const expected: Expected[] = lines.filter((l) => l.tid);
      const j = ctxJson(pid);
      assert.equal(j.processContext?.mappingName, '/memfd:OTEL_CTX (deleted)');
      assert.equal(j.processContext?.resource['service.name'], 'otelctx-example');
      assert.equal(j.processContext?.attributes['threadlocal.schema_version'], 'tlsdesc_v1_dev');
      assert.deepEqual(j.keyMap, ['http.route', 'user.id']);
      assert.equal(j.modules.length, 1);
      assert.equal(j.modules[0].locator.model, variant === 'example' ? 'tlsdesc' : 'initial-exec');
      const got = Object.fromEntries(j.modules[0].threads.map((t) => [t.tid, t]));
      assert.equal(expected.length, 6);
      for (const e of expected) {
        const t = got[e.tid];
        assert.ok(t, `thread ${e.tid} reported`);
        assert.deepEqual({ trace: t.traceId, span: t.spanId, flags: t.traceFlags, attrs: t.attributes },
          { trace: e.trace_id, span: e.span_id, flags: e.trace_flags, attrs: e.attrs }, `thread ${e.tid}`);
      }
    } finally {
      await ex.release();
    }
  });
}

test('an unmodified Rust program with LD_PRELOAD=libotelctx.so and TRACEPARENT: every thread reports that trace', async () => {
  const bin = appBinary('threads-demo');
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const app = await startHeld(bin, [], { LD_PRELOAD: SO, TRACEPARENT: tp, OTEL_SERVICE_NAME: 'threads-demo', OTEL_RESOURCE_ATTRIBUTES: 'team=ctx' }, /^ready (\d+) (\d+)$/m);
  try {
    const m = /^ready (\d+) (\d+)$/m.exec(app.out.text)!;
    const pid = Number(m[1]);
    const total = Number(m[2]);
    const j = ctxJson(pid);
    assert.equal(j.processContext?.resource['service.name'], 'threads-demo');
    assert.equal(j.processContext?.resource['team'], 'ctx');
    assert.equal(j.modules.length, 1);
    assert.equal(j.modules[0].path, SO);
    const threads = j.modules[0].threads;
    assert.equal(threads.length, total, 'main + 3 workers + 6 children + 1 grandchild');
    for (const t of threads) {
      assert.deepEqual({ trace: t.traceId, span: t.spanId, flags: t.traceFlags }, { trace: '4bf92f3577b34da6a3ce929d0e0e4736', span: '00f067aa0ba902b7', flags: 1 }, `thread ${t.tid}`);
    }
    assert.equal(app.err.text, '', 'no warnings');
  } finally {
    await app.release();
  }
});

test('the same program without TRACEPARENT: threads have no context; a malformed one warns once', async () => {
  const bin = appBinary('threads-demo');
  const app = await startHeld(bin, [], { LD_PRELOAD: SO, TRACEPARENT: '00-nothex-00f067aa0ba902b7-01' }, /^ready (\d+) (\d+)$/m);
  try {
    const pid = Number(/^ready (\d+)/m.exec(app.out.text)![1]);
    const j = ctxJson(pid);
    assert.ok(j.modules[0].threads.length === 11);
    for (const t of j.modules[0].threads) assert.equal(t.recordAddress, 0);
    // The warning is written at load, but its pipe may be read after stdout's.
    await app.err.wait(/TRACEPARENT/, 5_000);
    await app.release();
    assert.equal(app.err.text.trim().split('\n').length, 1, app.err.text);
  } finally {
    await app.release();
  }
});

test('a process that publishes nothing: one line, exit 3', async () => {
  const app = await startHeld(appBinary('threads-demo'), [], {}, /^ready/m);
  try {
    const pid = Number(/^ready (\d+)/m.exec(app.out.text)![1]);
    const r = runAgentSync(['ctx', '--pid', String(pid)]);
    assert.equal(r.code, 3);
    assert.equal(r.stderr.trim(), `otel-rust-agent: process ${pid} publishes no OpenTelemetry context (no OTEL_CTX mapping, no otel_thread_ctx_v1 symbol in its modules)`);
  } finally {
    await app.release();
  }
});

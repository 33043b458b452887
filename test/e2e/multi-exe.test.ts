// One agent, several executables (issue 8, item 3): a repeated --exe or a
// comma-separated OTEL_TARGET_EXE. One BPF runtime, one ring, one exporter;
// each executable's processes come out under their own resource.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, startAgent, rawExchange, waitForStats, runAgentSync, Service, RunningAgent } from '../helpers/procs';

let recv: OtlpReceiver;
let dir: string;
const exes: Record<string, string> = {};

before(async () => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'multi-exe-')));
  for (const n of ['orders', 'billing', 'hyper014']) {
    exes[n] = path.join(dir, n);
    fs.copyFileSync(serviceBinary(n === 'hyper014' ? 'hyper014-server' : 'demo-service'), exes[n]);
    fs.chmodSync(exes[n], 0o755);
  }
  recv = await startOtlpReceiver({ grpc: true });
});

after(async () => {
  await recv?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function spanOf(tag: string) {
  const end = Date.now() + 15_000;
  for (;;) {
    const s = recv.spans().find((x) => x.attributes['url.query'] === `t=${tag}`);
    if (s) return s;
    if (Date.now() > end) throw new Error(`no span for ${tag}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function check(agent: RunningAgent, svcs: Record<string, Service>, tag: string) {
  for (const [n, s] of Object.entries(svcs)) {
    await rawExchange(s.port, [`GET /users/1?t=${tag}-${n} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`], 1);
  }
  for (const [n, s] of Object.entries(svcs)) {
    const span = await spanOf(`${tag}-${n}`);
    assert.equal(span.resource['process.pid'], s.pid);
    assert.equal(span.resource['process.executable.path'], exes[n]);
    assert.equal(span.resource['service.name'], n === 'orders' ? 'orders-svc' : n);
  }
  // The stats file is rewritten once a second: wait for the write that has them.
  const st = await waitForStats(agent, (x) => x.files.length === Object.keys(svcs).length && x.files.every((f) => f.processes === 1));
  assert.deepEqual(st.files.map((f) => f.path).sort(), Object.keys(svcs).map((n) => exes[n]).sort());
  assert.ok(st.files.every((f) => f.origin === 'exe' && f.processes === 1), JSON.stringify(st.files));
}

test('a repeated --exe: every executable traced by one agent, hyper 1 and hyper 0.14 alike', async () => {
  const svcs = {
    orders: await startService(exes.orders, { OTEL_SERVICE_NAME: 'orders-svc' }),
    billing: await startService(exes.billing),
    hyper014: await startService(exes.hyper014),
  };
  const agent = startAgent(['--exe', exes.orders, '--exe', exes.billing, '--exe', exes.hyper014], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
  try {
    for (const n of Object.keys(svcs)) await agent.stderr.wait(new RegExp(`tracing every process of ${exes[n]}: `), 60_000);
    await check(agent, svcs, 'flags');
  } finally {
    for (const s of Object.values(svcs)) await s.stop();
    assert.equal(await agent.stop(), 0, agent.stderr.text);
  }
});

test('a list in OTEL_TARGET_EXE, and a service started after the agent', async () => {
  const agent = startAgent([], { OTEL_TARGET_EXE: `${exes.orders}, ${exes.billing}`, OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
  const svcs: Record<string, Service> = {};
  try {
    await agent.stderr.wait(new RegExp(`tracing every process of ${exes.billing}: `), 60_000);
    svcs.orders = await startService(exes.orders, { OTEL_SERVICE_NAME: 'orders-svc' });
    svcs.billing = await startService(exes.billing);
    await check(agent, svcs, 'env');
  } finally {
    for (const s of Object.values(svcs)) await s.stop();
    assert.equal(await agent.stop(), 0, agent.stderr.text);
  }
});

test('one missing executable among several stops the agent before it loads anything', () => {
  const r = runAgentSync(['--exe', exes.orders, '--exe', path.join(dir, 'nope')]);
  assert.equal(r.code, 3);
  assert.equal(r.stderr, `otel-rust-agent: ${path.join(dir, 'nope')}: no such file\n`);
});

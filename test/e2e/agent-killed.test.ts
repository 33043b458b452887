// The agent killed (SIGKILL) under load and in the middle of attaching: the
// service keeps answering, no breakpoint byte is left in its code (read
// through /proc/<pid>/mem and compared with the file, byte for byte), and a
// new agent attaches cleanly afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, startAgent, serviceBinary, attachAgent, freshStats, rawExchange, Service, RunningAgent } from '../helpers/procs';
import { startLoad, Load } from '../helpers/load';
import { textDifferences, processBytesAt, fileBytesAt, probeOffsets } from '../helpers/text';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let recv: OtlpReceiver;
let svc: Service;
let file: string;
let load: Load;

before(async () => {
  recv = await startOtlpReceiver({ grpc: true, http: false });
  svc = await startService(serviceBinary('hyper014-server'));
  file = fs.realpathSync(serviceBinary('hyper014-server'));
  // Load for the whole file: the service must answer every request, whatever happens to the agent.
  load = startLoad({ port: svc.port, connections: 4, rate: 800 });
});

after(async () => {
  load.stop();
  const r = await load.done;
  await svc.stop();
  await recv.close();
  assert.deepEqual(r.errors, []);
  assert.equal(r.unanswered, 0);
  assert.deepEqual(r.statuses, { 200: r.sent });
  assert.ok(r.sent > 1000, `the load ran (${r.sent} requests)`);
});

/** Waits (briefly) until the process's code is the file's again, and returns what still differs. */
async function cleanText(pid: number): Promise<number[]> {
  let d: number[] = [];
  for (let i = 0; i < 40; i++) {
    d = textDifferences(pid, file);
    if (d.length === 0) return d;
    await sleep(50);
  }
  return d;
}

/** Attaches, checks the breakpoints are where the stats file says (and nowhere else), returns the offsets. */
async function attachedOffsets(agent: RunningAgent): Promise<number[]> {
  const offsets = probeOffsets(await freshStats(agent)).sort((a, b) => a - b);
  assert.ok(offsets.length >= 2, 'parse and encode_status sites reported');
  for (const o of offsets) {
    assert.notEqual(fileBytesAt(file, o, 1)[0], 0xcc);
    assert.equal(processBytesAt(svc.pid, o, 1)[0], 0xcc, `int3 at 0x${o.toString(16)} while attached`);
  }
  // The agent changed the process's code at exactly those bytes.
  assert.deepEqual(textDifferences(svc.pid, file), offsets);
  return offsets;
}

/** A fresh agent traces exactly the requests sent now. */
async function tracesCleanly(mode: string, tag: string): Promise<void> {
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint], { OTEL_RUST_AGENT_ATTACH: mode });
  try {
    await attachedOffsets(agent);
    const before = await freshStats(agent);
    const parts: string[] = [];
    for (let i = 0; i < 20; i++) parts.push(`GET /?${tag}=${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const res = await rawExchange(svc.port, parts, 20);
    assert.deepEqual(res.map((r) => r.status), Array(20).fill(200));
    const mine = async () => recv.spans().filter((s) => String(s.attributes['url.query'] ?? '').startsWith(`${tag}=`));
    for (let i = 0; i < 100 && (await mine()).length < 20; i++) await sleep(100);
    const spans = await mine();
    assert.deepEqual(spans.map((s) => s.attributes['url.query']).sort(), parts.map((_, i) => `${tag}=${i}`).sort());
    assert.ok(before.probes.every((p) => p.drops === 0 && p.badLayout === 0));
  } finally {
    assert.equal(await agent.stop(), 0, agent.stderr.text);
  }
  assert.deepEqual(await cleanText(svc.pid), [], 'a clean stop leaves the code as the file has it');
}

for (const mode of ['multi', 'perf']) {
  test(`SIGKILL under load (${mode} links): the service answers throughout, no int3 left, a new agent attaches cleanly`, async () => {
    const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint], { OTEL_RUST_AGENT_ATTACH: mode });
    const offsets = await attachedOffsets(agent);
    const sent0 = load.now().sent;
    await sleep(1000);
    const stats = await freshStats(agent);
    assert.ok(stats.probes.find((p) => p.probe === 'parse')!.hits > 0, 'the load was traced');
    agent.proc.kill('SIGKILL');
    assert.equal(await agent.exited, 128);
    assert.deepEqual(await cleanText(svc.pid), [], `code differs from the file after the kill (probes at ${offsets.map((o) => o.toString(16))})`);
    await sleep(500);
    assert.ok(load.now().sent - sent0 > 500, 'requests kept going through the kill');
    assert.deepEqual(load.now().errors, []);
    await tracesCleanly(mode, `after-kill-${mode}`);
  });
}

test('SIGKILL during attach: at the first breakpoint (multi and perf links) and at random points of start-up', async () => {
  // Where the probes go: from an agent that attaches and stops normally.
  const first = await attachAgent(['--pid', String(svc.pid), '--exporter', 'none']);
  const offsets = await attachedOffsets(first);
  assert.equal(await first.stop(), 0);
  assert.deepEqual(await cleanText(svc.pid), []);

  const trials: { mode: string; killAt: 'first-int3' | number }[] = [
    { mode: 'multi', killAt: 'first-int3' }, { mode: 'perf', killAt: 'first-int3' },
    { mode: 'perf', killAt: 'first-int3' }, { mode: 'multi', killAt: 150 }, { mode: 'multi', killAt: 400 },
  ];
  for (const t of trials) {
    const agent = startAgent(['--pid', String(svc.pid), '--exporter', 'none'], { OTEL_RUST_AGENT_ATTACH: t.mode });
    if (t.killAt === 'first-int3') {
      // Poll the process's code until a breakpoint appears, then kill at once.
      const end = Date.now() + 60_000;
      let seen = false;
      while (!seen && Date.now() < end && agent.proc.exitCode === null) {
        seen = offsets.some((o) => processBytesAt(svc.pid, o, 1)[0] === 0xcc);
        if (!seen) await new Promise((r) => setImmediate(r));
      }
      assert.ok(seen, `no breakpoint appeared: ${agent.stderr.text}`);
    } else {
      await sleep(t.killAt);
    }
    agent.proc.kill('SIGKILL');
    await agent.exited;
    assert.deepEqual(await cleanText(svc.pid), [], `killed ${t.killAt === 'first-int3' ? 'at the first int3' : `${t.killAt} ms after start`} (${t.mode})`);
    fs.rmSync(agent.statsFile, { force: true });
  }
  assert.deepEqual(load.now().errors, []);
  await tracesCleanly('multi', 'after-attach-kills');
});

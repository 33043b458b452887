// End to end: reqwest 0.11 (on hyper 0.14's Client) with propagation active.
// hyper 0.14's Client::origin_form is probed (issue8f: hyper's own clients
// used directly get their requests filed there); reqwest's calls pass it too
// and must be skipped there, never filed twice: a call filed twice would leave
// its target claimed, and the next call from another server span would go out
// unchanged as ambiguous. So: sequential calls from different server spans to
// one target, each with exactly its own traceparent, checked from the
// receiving side (a raw TCP server), and origin_form's counters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats, makeTestCgroup, startServiceInCgroup, removeTestCgroup, propagationAttached } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent | undefined;
let raw: net.Server;
let rport = 0;
let cgroup = '';
const heads: string[] = [];

before(async () => {
  raw = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const he = buf.indexOf('\r\n\r\n');
      if (he < 0) return;
      heads.push(buf.subarray(0, he + 4).toString('latin1'));
      buf = Buffer.alloc(0);
      sock.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
    });
    sock.on('error', () => { /* the client went away */ });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  rport = (raw.address() as AddressInfo).port;
  cgroup = makeTestCgroup('h014prop');
  svc = await startServiceInCgroup(cgroup, serviceBinary('reqwest11-client'));
  recv = await startOtlpReceiver({ grpc: false, http: true });
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'caller']);
  await propagationAttached(agent);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => raw?.close(r));
  removeTestCgroup(cgroup);
  assert.equal(code, 0, agent?.stderr.text);
});

const TP_LINE = /\r\ntraceparent: (00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2}))\r\n/g;
const d = (a: AgentStats, b: AgentStats, k: string) => (a.spans['hyper-h1-client']?.[k] ?? 0) - (b.spans['hyper-h1-client']?.[k] ?? 0);
const of = (s: AgentStats) => s.probes.find((p) => p.probe === 'hyper014_origin_form')!;

test('reqwest 0.11 on hyper 0.14: 5 sequential calls from 5 server spans to one target each carry exactly their own traceparent; origin_form skips each (filed at execute_request), none filed twice', async () => {
  const N = 5;
  const before = await freshStats(agent!);
  assert.ok(of(before), 'hyper 0.14 origin_form probed');
  heads.length = 0;
  for (let i = 0; i < N; i++) {
    const res = await fetch(`http://127.0.0.1:${svc.port}/call?url=${encodeURIComponent(`http://127.0.0.1:${rport}/same?x=1`)}`);
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim(), '200');
  }
  await recv.waitForSpans(2 * N, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(heads.length, N);
  const servers = recv.spans().filter((s) => s.kind === 2);
  const clients = recv.spans().filter((s) => s.kind === 3);
  const traces = new Set<string>();
  for (const h of heads) {
    const tps = [...h.matchAll(TP_LINE)];
    assert.equal(tps.length, 1, h);
    assert.ok(h.startsWith(`GET /same?x=1 HTTP/1.1\r\ntraceparent: ${tps[0][1]}\r\n`), h);
    const c = clients.find((x) => x.spanId === tps[0][3]);
    assert.ok(c, 'the header\'s span id is an exported CLIENT span');
    const s = servers.find((x) => x.spanId === c.parentSpanId);
    assert.ok(s, 'its parent is a server span');
    assert.equal(tps[0][2], s.traceId);
    traces.add(s.traceId);
  }
  assert.equal(traces.size, N, 'each call in its own server span\'s trace');
  const after = await waitForStats(agent!, (s) => d(s, before, 'propSpans') >= N);
  assert.equal(d(after, before, 'propInjected'), N);
  assert.equal(d(after, before, 'propAmbiguous'), 0);
  assert.equal(of(after).hits - of(before).hits, N);
  assert.equal(of(after).noEntry - of(before).noEntry, N, 'every call was reqwest\'s, skipped at origin_form');
  assert.equal(of(after).badLayout - of(before).badLayout, 0);
  console.log(`hyper 0.14 origin_form: hits ${of(after).hits - of(before).hits}, skipped ${of(after).noEntry - of(before).noEntry}; propInjected ${d(after, before, 'propInjected')} of ${N}`);
});

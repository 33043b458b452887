// End to end: CLIENT spans of reqwest 0.11 (on hyper 0.14's client, which
// follows redirects inside reqwest itself) from the same fixture source as the
// reqwest 0.12 test; the service's axum server span is the parent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let target: http.Server;
let tport = 0;

before(async () => {
  target = http.createServer((req, res) => {
    if (req.url === '/chain') { res.writeHead(302, { location: '/ok?hop=2' }); res.end(); return; }
    if (req.url!.startsWith('/ok')) { res.end('ok'); return; }
    res.writeHead(404); res.end();
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  tport = (target.address() as AddressInfo).port;
  recv = await startOtlpReceiver({ grpc: false, http: true });
  svc = await startService(serviceBinary('reqwest11-client'));
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint]);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => target?.close(r));
  assert.equal(code, 0, agent?.stderr.text);
});

async function call(q: Record<string, string | number>): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${svc.port}/call?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`);
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n');
}
const hits = (s: AgentStats, probe: string) => s.probes.find((p) => p.probe === probe)?.hits ?? 0;

test('reqwest 0.11 (hyper 0.14): exact attributes, parent, redirect hops with resend_count, 404 ERROR, blocking; 3 hits per call', async () => {
  const before = await freshStats(agent);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${tport}/ok?v=11` }), ['200']);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${tport}/chain` }), ['200']);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${tport}/nope`, mode: 'blocking' }), ['404']);
  await recv.waitForSpans(3 + 4, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const cs = recv.spans().filter((s) => s.kind === 3);
  assert.equal(cs.length, 4);
  const by = (u: string) => cs.find((s) => s.attributes['url.full'] === `http://127.0.0.1:${tport}${u}`)!;
  assert.deepEqual(by('/ok?v=11').attributes, {
    'http.request.method': 'GET', 'url.full': `http://127.0.0.1:${tport}/ok?v=11`, 'server.address': '127.0.0.1', 'server.port': tport,
    'network.protocol.version': '1.1', 'http.response.status_code': 200,
  });
  const servers = recv.spans().filter((s) => s.kind === 2);
  const srv = (q: string) => servers.find((s) => String(s.attributes['url.query']).includes(encodeURIComponent(q)))!;
  assert.equal(by('/ok?v=11').parentSpanId, srv('/ok?v=11').spanId);
  assert.equal(by('/chain').attributes['http.response.status_code'], 302);
  assert.equal(by('/chain').attributes['http.request.resend_count'], undefined);
  assert.equal(by('/ok?hop=2').attributes['http.request.resend_count'], 1);
  for (const u of ['/chain', '/ok?hop=2']) assert.equal(by(u).parentSpanId, srv('/chain').spanId);
  assert.equal(by('/nope').status.code, 2);
  assert.equal(by('/nope').attributes['error.type'], '404');
  // reqwest::blocking runs the call on its own runtime thread; the blocking
  // call (in the handler's spawn_blocking task) gives it its parent.
  assert.equal(by('/nope').parentSpanId, srv('/nope').spanId);
  const after = await waitForStats(agent, (s) => hits(s, 'client_parse') - hits(before, 'client_parse') >= 4);
  assert.equal(hits(after, 'reqwest_execute') - hits(before, 'reqwest_execute'), 3);
  assert.equal(hits(after, 'reqwest_blocking_execute') - hits(before, 'reqwest_blocking_execute'), 1);
  assert.equal(hits(after, 'client_encode') - hits(before, 'client_encode'), 4);
  assert.equal(hits(after, 'client_parse') - hits(before, 'client_parse'), 4);
  assert.equal(after.spans['hyper-h1-client'].pending, 0);
});

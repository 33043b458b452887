// End to end: CLIENT spans of reqwest 0.13 (hyper 1, h2 0.4) from the same
// fixture source as the reqwest 0.12 test: HTTP/1 through hyper-h1-client
// (redirect hops, blocking), HTTP/2 (h2c) through h2-client; the service's
// axum server span is the parent in both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent } from '../helpers/procs';
import { startRedirectTarget, fixtureCall, assertH1Calls, probeHits } from '../helpers/reqwest-h1-case';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let target: http.Server;
let tport = 0;
let h2c: http2.Http2Server;
let h2cPort = 0;

before(async () => {
  ({ server: target, port: tport } = await startRedirectTarget());
  h2c = http2.createServer((req, res) => { if (req.url.startsWith('/missing')) res.writeHead(404); res.end('ok'); });
  await new Promise<void>((r) => h2c.listen(0, '127.0.0.1', r));
  h2cPort = (h2c.address() as AddressInfo).port;
  recv = await startOtlpReceiver({ grpc: false, http: true });
  svc = await startService(serviceBinary('reqwest13-client'));
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint]);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => target?.close(r));
  await new Promise((r) => h2c?.close(r));
  assert.equal(code, 0, agent?.stderr.text);
});

const call = fixtureCall(() => svc);
const hits = probeHits;

test('reqwest 0.13 over HTTP/1: exact attributes, parent, redirect hops with resend_count, 404 ERROR, blocking; 3 hits per call', async () => {
  await assertH1Calls(recv, agent, call, tport, '13');
});

test('reqwest 0.13 over h2c: one HTTP/2 CLIENT span per call, exact attributes, the handler span as parent; 3 hits per call', async () => {
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${h2cPort}/ok?v=13`, h2c: 1 }), ['200']);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${h2cPort}/missing`, h2c: 1 }), ['404']);
  await recv.waitForSpans(2 + 2, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const cs = recv.spans().filter((s) => s.kind === 3);
  assert.equal(cs.length, 2);
  const ok = cs.find((s) => s.attributes['url.full'] === `http://127.0.0.1:${h2cPort}/ok?v=13`)!;
  assert.deepEqual(ok.attributes, {
    'http.request.method': 'GET', 'url.full': `http://127.0.0.1:${h2cPort}/ok?v=13`, 'server.address': '127.0.0.1', 'server.port': h2cPort,
    'network.protocol.version': '2', 'http.response.status_code': 200,
  });
  const missing = cs.find((s) => s.attributes['url.full'] === `http://127.0.0.1:${h2cPort}/missing`)!;
  assert.equal(missing.status.code, 2);
  assert.equal(missing.attributes['error.type'], '404');
  const servers = recv.spans().filter((s) => s.kind === 2);
  for (const c of cs) assert.ok(servers.some((s) => s.spanId === c.parentSpanId && s.traceId === c.traceId), 'a child of its handler span');
  const after = await waitForStats(agent, (s) => hits(s, 'h2-client', 'client_recv_headers') - hits(before, 'h2-client', 'client_recv_headers') >= 2);
  const d = (m: string, p: string) => hits(after, m, p) - hits(before, m, p);
  assert.deepEqual([d('hyper-h1-client', 'reqwest_execute'), d('h2-client', 'client_send_headers'), d('h2-client', 'client_recv_headers'),
    d('hyper-h1-client', 'client_encode'), d('hyper-h1-client', 'client_parse')], [2, 2, 2, 0, 0]);
});

test('reqwest 0.13: a connection refused (HTTP/1 client, and h2c prior knowledge) gives one ERROR CLIENT span each, error.type connection_refused, the handler span as parent', async () => {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${port}/down` }), ['error connect']);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${port}/down2`, h2c: 1 }), ['error connect']);
  await recv.waitForSpans(4, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const cs = recv.spans().filter((x) => x.kind === 3);
  assert.equal(cs.length, 2);
  for (const [path, c] of [['/down', cs.find((x) => x.attributes['url.full']?.toString().endsWith('/down'))], ['/down2', cs.find((x) => x.attributes['url.full']?.toString().endsWith('/down2'))]] as const) {
    assert.ok(c, path);
    assert.equal(c.name, 'HTTP');
    assert.deepEqual(c.attributes, { 'url.full': `http://127.0.0.1:${port}${path}`, 'server.address': '127.0.0.1', 'server.port': port, 'error.type': 'connection_refused' });
    assert.equal(c.status.code, 2);
    const server = recv.spans().find((x) => x.kind === 2 && x.traceId === c.traceId);
    assert.ok(server, `${path}: the handler span is in the same trace`);
    assert.equal(c.parentSpanId, server.spanId);
  }
  const after = await waitForStats(agent, (x) => hits(x, 'hyper-h1-client', 'reqwest_request_error') - hits(before, 'hyper-h1-client', 'reqwest_request_error') >= 2);
  assert.equal(hits(after, 'hyper-h1-client', 'reqwest_request_error') - hits(before, 'hyper-h1-client', 'reqwest_request_error'), 2);
  assert.equal(hits(after, 'hyper-h1-client', 'reqwest_execute') - hits(before, 'hyper-h1-client', 'reqwest_execute'), 2);
  assert.equal(hits(after, 'hyper-h1-client', 'client_encode') - hits(before, 'hyper-h1-client', 'client_encode'), 0);
  assert.equal(hits(after, 'h2-client', 'client_send_headers') - hits(before, 'h2-client', 'client_send_headers'), 0);
  assert.equal(after.spans['hyper-h1-client'].connectFailures - before.spans['hyper-h1-client'].connectFailures, 2);
});

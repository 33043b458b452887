// End to end on a plain hyper 0.14 server (no framework), exported over
// OTLP HTTP/protobuf.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, waitForStats, freshStats, Service, RunningAgent } from '../helpers/procs';
import { connectH2, h2Request, closeH2 } from '../helpers/h2client';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;

before(async () => {
  recv = await startOtlpReceiver({ grpc: false, http: true });
  svc = await startService(serviceBinary('hyper014-server'));
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint,
    '--service-name', 'legacy-hyper', '--headers', 'x-tenant=e2e,authorization=Bearer%20t0ken']);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  assert.equal(code, 0, agent?.stderr.text);
});

test('hyper 0.14: exact spans for 200, 503 and 404, exported over http/protobuf', async () => {
  const res = await rawExchange(svc.port, [
    `GET /?a=1 HTTP/1.1\r\nHost: localhost:${svc.port}\r\nUser-Agent: h014/1\r\n\r\n`,
    `GET /fail HTTP/1.1\r\nHost: localhost:${svc.port}\r\n\r\n`,
    `DELETE /missing HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`,
  ], 3);
  assert.deepEqual(res.map((r) => r.status), [200, 503, 404]);
  const spans = await recv.waitForSpans(3, 15_000);
  assert.equal(spans.length, 3);
  const by = (p: string) => spans.find((s) => s.attributes['url.path'] === p)!;
  assert.deepEqual(by('/').attributes, {
    'http.request.method': 'GET', 'url.path': '/', 'url.query': 'a=1', 'url.scheme': 'http',
    'server.address': 'localhost', 'server.port': svc.port, 'user_agent.original': 'h014/1',
    'network.protocol.version': '1.1', 'http.response.status_code': 200,
  });
  assert.equal(by('/').name, 'GET');
  assert.equal(by('/fail').status.code, 2);
  assert.equal(by('/fail').attributes['error.type'], '503');
  assert.equal(by('/missing').name, 'DELETE');
  assert.equal(by('/missing').attributes['network.protocol.version'], '1.0');
  assert.equal(by('/missing').attributes['server.port'], 80);
  assert.equal(by('/missing').attributes['http.response.status_code'], 404);
  for (const s of spans) {
    assert.equal(s.via, 'http');
    assert.equal(s.resource['service.name'], 'legacy-hyper');
    assert.equal(s.resource['process.pid'], svc.pid);
    assert.equal(s.resource['process.executable.name'], 'hyper014-server');
  }
  assert.equal(recv.lastHeaders()['x-tenant'], 'e2e');
  assert.equal(recv.lastHeaders()['authorization'], 'Bearer t0ken');
});

test('hyper 0.14: 50 keep-alive requests give exactly 50 spans, 2 probe hits each', async () => {
  recv.clear();
  const before = await freshStats(agent);
  const parts: (string | number)[] = [];
  for (let i = 0; i < 50; i++) parts.push(`GET /?run=ka${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 2);
  const res = await rawExchange(svc.port, parts, 50, 20_000);
  assert.equal(res.length, 50);
  await recv.waitForSpans(50, 15_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(recv.spans().length, 50);
  const after = await waitForStats(agent, (s) => s.probes.find((p) => p.probe === 'encode_status')!.hits - before.probes.find((p) => p.probe === 'encode_status')!.hits >= 50);
  const delta = (probe: string) => after.probes.find((p) => p.probe === probe)!.hits - before.probes.find((p) => p.probe === probe)!.hits;
  // hyper 0.14's server has no preface sniff: one parse per request.
  assert.equal(delta('parse'), 50);
  assert.equal(delta('encode_status'), 50);
  assert.equal(delta('encode'), 0);
  assert.equal(delta('encode_ret'), 0);
});

test('hyper 0.14 over h2c (h2 0.3): one span per stream with the HTTP attribute set, 2 probe hits each', async () => {
  recv.clear();
  const before = await freshStats(agent);
  const session = await connectH2(`http://127.0.0.1:${svc.port}`);
  try {
    const r = await Promise.all([
      h2Request(session, { ':path': '/?via=h2', 'user-agent': 'h2-014/1' }),
      h2Request(session, { ':path': '/fail?via=h2', 'user-agent': 'h2-014/1' }),
      h2Request(session, { ':method': 'DELETE', ':path': '/gone?via=h2', 'user-agent': 'h2-014/1' }),
    ]);
    assert.deepEqual(r.map((x) => x.status), [200, 503, 404]);
  } finally {
    await closeH2(session);
  }
  const spans = await recv.waitForSpans(3, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(recv.spans().length, 3);
  const by = (p: string) => spans.find((s) => s.attributes['url.path'] === p)!;
  assert.deepEqual(by('/').attributes, {
    'http.request.method': 'GET', 'url.path': '/', 'url.query': 'via=h2', 'url.scheme': 'http',
    'server.address': '127.0.0.1', 'server.port': svc.port, 'user_agent.original': 'h2-014/1',
    'network.protocol.version': '2', 'http.response.status_code': 200,
  });
  assert.equal(by('/').name, 'GET');
  assert.equal(by('/fail').status.code, 2);
  assert.equal(by('/fail').attributes['error.type'], '503');
  assert.equal(by('/gone').name, 'DELETE');
  assert.equal(by('/gone').attributes['http.response.status_code'], 404);
  assert.equal(by('/').scope.name, 'otel-rust-agent/h2');
  const after = await waitForStats(agent, (s) => s.probes.find((p) => p.probe === 'send_response')!.hits - (before.probes.find((p) => p.probe === 'send_response')?.hits ?? 0) >= 3);
  const delta = (probe: string) => after.probes.find((p) => p.probe === probe)!.hits - (before.probes.find((p) => p.probe === probe)?.hits ?? 0);
  assert.equal(delta('recv_headers'), 3);
  assert.equal(delta('send_response'), 3);
  // hyper 0.14 reads a connection's first bytes as HTTP/1 before switching
  // to HTTP/2: one parse hit per connection, on the preface, and no span.
  assert.equal(delta('parse'), 1);
  assert.equal(after.spans['hyper-h1-server'].h2Prefaces - (before.spans['hyper-h1-server']?.h2Prefaces ?? 0), 1);
  assert.equal(after.spans['hyper-h1-server'].pending, 0);
});

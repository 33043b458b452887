// End to end: axum 0.7's route templates (/users/:id) over HTTP/1.1 and h2c,
// nested routers joined, and a request that matches no route.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, waitForStats, freshStats, Service, RunningAgent, AgentStats } from '../helpers/procs';
import { connectH2, h2Request, closeH2 } from '../helpers/h2client';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;

before(async () => {
  recv = await startOtlpReceiver({ grpc: true, http: false });
  svc = await startService(serviceBinary('axum07-server'));
  agent = await attachAgent(['--pid', String(svc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  assert.equal(code, 0, `agent exit code; stderr:\n${agent?.stderr.text}`);
});

async function one(query: string): Promise<ReceivedSpan> {
  const end = Date.now() + 15_000;
  for (;;) {
    const got = recv.spans().filter((s) => s.attributes['url.query'] === query);
    if (got.length > 0 || Date.now() > end) { assert.equal(got.length, 1, query); return got[0]; }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const hits = (s: AgentStats, module: string, probe: string) => s.probes.find((p) => p.module === module && p.probe === probe)?.hits ?? 0;

test('axum 0.7 over HTTP/1.1: http.route is the 0.7 template, nested routers joined, no route keeps the method alone', async () => {
  const before = await freshStats(agent);
  const res = await rawExchange(svc.port, [
    'GET /users/12?r=h1-user HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    'GET /api/v1/users/x9?r=h1-nested HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    'GET /nowhere?r=h1-none HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    'GET /fail?r=h1-fail HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
  ], 4);
  assert.deepEqual(res.map((r) => r.status), [200, 200, 404, 500]);
  const user = await one('r=h1-user'), nested = await one('r=h1-nested'), none = await one('r=h1-none'), fail = await one('r=h1-fail');
  assert.equal(user.name, 'GET /users/:id');
  assert.equal(user.attributes['http.route'], '/users/:id');
  assert.equal(nested.name, 'GET /api/v1/users/:uid');
  assert.equal(nested.attributes['http.route'], '/api/v1/users/:uid');
  assert.equal(none.name, 'GET');
  assert.equal(none.attributes['http.route'], undefined);
  assert.equal(fail.name, 'GET /fail');
  assert.equal(fail.status.code, 2);
  const after = await waitForStats(agent, (st) => hits(st, 'hyper-h1-server', 'encode_status') - hits(before, 'hyper-h1-server', 'encode_status') >= 4);
  // One route probe hit per routed request; none for the request no route matched.
  assert.equal(hits(after, 'axum', 'matched_path') - hits(before, 'axum', 'matched_path'), 3);
  assert.equal(after.spans.axum.unattributed, 0);
});

test('axum 0.7 over h2c: the same routes on HTTP/2 streams', async () => {
  const session = await connectH2(`http://127.0.0.1:${svc.port}`);
  try {
    const r = await Promise.all([
      // Real clients send header fields (user-agent at least): the request is
      // found by its header storage, which a request with none lacks.
      h2Request(session, { ':path': '/users/3?r=h2-user', 'user-agent': 'n1' }),
      h2Request(session, { ':path': '/api/v1/users/q?r=h2-nested', 'user-agent': 'n2' }),
      h2Request(session, { ':path': '/nowhere?r=h2-none', 'user-agent': 'n3' }),
    ]);
    assert.deepEqual(r.map((x) => x.status), [200, 200, 404]);
  } finally {
    await closeH2(session);
  }
  const user = await one('r=h2-user'), nested = await one('r=h2-nested'), none = await one('r=h2-none');
  assert.equal(user.name, 'GET /users/:id');
  assert.equal(user.attributes['network.protocol.version'], '2');
  assert.equal(user.attributes['http.route'], '/users/:id');
  assert.equal(nested.attributes['http.route'], '/api/v1/users/:uid');
  assert.equal(none.name, 'GET');
  assert.equal(none.attributes['http.route'], undefined);
});

// End to end: HTTP/2 server spans on the axum 0.8 fixture (hyper 1, h2 0.4)
// over h2c with prior knowledge. The agent attaches while a client already
// holds an open HTTP/2 connection whose HPACK dynamic table is populated:
// the requests after attaching must give complete spans.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type * as http2 from 'node:http2';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, waitForStats, freshStats, Service, RunningAgent, AgentStats } from '../helpers/procs';
import { connectH2, h2Request, h2RequestThenCancel, closeH2 } from '../helpers/h2client';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let early: http2.ClientHttp2Session;
let earlyBefore: AgentStats;

const authority = () => `127.0.0.1:${svc.port}`;
// Headers sent on every request of the early session: after the first one
// HPACK sends them as indexes into the connection's dynamic table.
const EARLY_HEADERS = { 'user-agent': 'early-client/3.1', 'x-tenant': 'acme-corp-with-a-long-name' };

before(async () => {
  recv = await startOtlpReceiver({ grpc: true, http: false });
  svc = await startService(serviceBinary('axum08-server'));
  early = await connectH2(`http://${authority()}`);
  for (let i = 0; i < 50; i++) {
    const r = await h2Request(early, { ':path': `/users/${i}?phase=before`, ...EARLY_HEADERS });
    assert.equal(r.status, 200);
  }
  agent = await attachAgent(['--pid', String(svc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
  earlyBefore = await freshStats(agent);
});

after(async () => {
  await closeH2(early).catch(() => {});
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  assert.equal(code, 0, `agent exit code; stderr:\n${agent?.stderr.text}`);
});

async function spansFor(pred: (s: ReceivedSpan) => boolean, n: number, timeoutMs = 15_000): Promise<ReceivedSpan[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = recv.spans().filter(pred);
    if (got.length >= n || Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const hits = (s: AgentStats, probe: string) => s.probes.find((p) => p.module === 'h2-server' && p.probe === probe)?.hits ?? 0;

test('attached to an open connection with a populated HPACK table: the next 50 requests give complete spans', async () => {
  for (let i = 0; i < 50; i++) {
    const r = await h2Request(early, { ':path': `/users/${100 + i}?phase=after`, ...EARLY_HEADERS });
    assert.equal(r.status, 200);
  }
  const spans = await spansFor((s) => s.attributes['url.query'] === 'phase=after', 50);
  await new Promise((r) => setTimeout(r, 300));
  const all = recv.spans().filter((s) => s.attributes['url.query'] === 'phase=after');
  assert.equal(all.length, 50);
  assert.equal(recv.spans().filter((s) => s.attributes['url.query'] === 'phase=before').length, 0);
  assert.deepEqual(all.map((s) => s.attributes['url.path']).sort(), Array.from({ length: 50 }, (_, i) => `/users/${100 + i}`).sort());
  for (const s of spans) {
    assert.equal(s.name, 'GET /users/{id}');
    assert.equal(s.kind, 2);
    assert.deepEqual(s.attributes, {
      'http.request.method': 'GET',
      'url.path': s.attributes['url.path'],
      'url.query': 'phase=after',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': svc.port,
      'user_agent.original': 'early-client/3.1',
      'network.protocol.version': '2',
      'http.response.status_code': 200,
      'http.route': '/users/{id}',
    });
    assert.equal(s.status.code, 0);
  }
  const after = await waitForStats(agent, (st) => hits(st, 'send_response') - hits(earlyBefore, 'send_response') >= 50);
  // Two probe hits per request: the request's header block and its response head.
  assert.equal(hits(after, 'recv_headers') - hits(earlyBefore, 'recv_headers'), 50);
  assert.equal(hits(after, 'send_response') - hits(earlyBefore, 'send_response'), 50);
  for (const p of after.probes) assert.equal(p.badLayout, 0, `${p.module}/${p.probe} bad layout`);
});

test('curl --http2-prior-knowledge: one SERVER span with the HTTP attribute set, traceparent honoured', async () => {
  const out = execFileSync('curl', ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
    '-A', 'curl-e2e/8', '-H', 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '-H', 'tracestate: k=v',
    `http://${authority()}/api/v1/users/u-17?verbose=1`], { encoding: 'utf8' });
  assert.equal(out, '2 200');
  const [s] = await spansFor((x) => x.attributes['url.path'] === '/api/v1/users/u-17', 1);
  assert.ok(s);
  assert.equal(s.name, 'GET /api/v1/users/{uid}');
  assert.deepEqual(s.attributes, {
    'http.request.method': 'GET', 'url.path': '/api/v1/users/u-17', 'url.query': 'verbose=1', 'url.scheme': 'http',
    'server.address': '127.0.0.1', 'server.port': svc.port, 'user_agent.original': 'curl-e2e/8',
    'network.protocol.version': '2', 'http.response.status_code': 200, 'http.route': '/api/v1/users/{uid}',
  });
  assert.equal(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(s.parentSpanId, '00f067aa0ba902b7');
  assert.equal(s.traceState, 'k=v');
  assert.equal(s.flags & 0x300, 0x300, 'parent marked remote');
  assert.equal(s.scope.name, 'otel-rust-agent/h2');
});

test('100 concurrent streams on one connection: 100 spans, each with its own path and status', async () => {
  const session = await connectH2(`http://${authority()}`);
  try {
    const codes = [200, 201, 404, 500, 503];
    const res = await Promise.all(Array.from({ length: 100 }, (_, i) =>
      h2Request(session, { ':path': `/status/${codes[i % 5]}?c=${i}`, 'user-agent': `c${i}` })));
    assert.deepEqual(res.map((r) => r.status), Array.from({ length: 100 }, (_, i) => codes[i % 5]));
  } finally {
    await closeH2(session);
  }
  const spans = await spansFor((s) => /^c=\d+$/.test(String(s.attributes['url.query'])), 100);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(recv.spans().filter((s) => /^c=\d+$/.test(String(s.attributes['url.query']))).length, 100);
  const codes = [200, 201, 404, 500, 503];
  for (const s of spans) {
    const i = Number(String(s.attributes['url.query']).slice(2));
    assert.equal(s.attributes['url.path'], `/status/${codes[i % 5]}`);
    assert.equal(s.attributes['user_agent.original'], `c${i}`);
    assert.equal(s.attributes['http.response.status_code'], codes[i % 5]);
    assert.equal(s.name, 'GET /status/{code}');
    assert.equal(s.status.code, codes[i % 5] >= 500 ? 2 : 0);
    assert.equal(s.attributes['error.type'], codes[i % 5] >= 500 ? String(codes[i % 5]) : undefined);
  }
  assert.equal(new Set(spans.map((s) => s.spanId)).size, 100);
});

test('a stream reset by the client before the response ends its span with error.type and is counted', async () => {
  const before = await freshStats(agent);
  const session = await connectH2(`http://${authority()}`);
  try {
    await h2RequestThenCancel(session, { ':path': '/slow?ms=1500&run=cancel' }, 150);
    // The handler is still sleeping: its response head never goes out for this stream.
    const [s] = await spansFor((x) => x.attributes['url.query'] === 'ms=1500&run=cancel', 1);
    assert.ok(s, 'span of the reset stream arrived');
    assert.equal(s.status.code, 2);
    assert.equal(s.attributes['error.type'], 'CANCEL');
    assert.equal(s.attributes['http.response.status_code'], undefined);
    assert.equal(s.attributes['url.path'], '/slow');
    const dur = s.endTimeUnixNano - s.startTimeUnixNano;
    assert.ok(dur >= 100_000_000n && dur < 1_000_000_000n, `ended at the reset (${dur} ns), not at the handler's end`);
  } finally {
    await closeH2(session);
  }
  const after = await waitForStats(agent, (st) => (st.spans['h2-server']?.resets ?? 0) > (before.spans['h2-server']?.resets ?? 0));
  assert.equal(after.spans['h2-server'].resets - (before.spans['h2-server']?.resets ?? 0), 1);
  assert.equal(hits(after, 'recv_reset') - hits(before, 'recv_reset'), 1);
  await new Promise((r) => setTimeout(r, 1800)); // the handler finishes: nothing more for this stream
  assert.equal(recv.spans().filter((x) => x.attributes['url.query'] === 'ms=1500&run=cancel').length, 1);
  assert.equal((await freshStats(agent)).spans['h2-server'].pending, 0);
});

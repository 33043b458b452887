// End to end, by PID, on the axum 0.8 / hyper 1 app built from crates.io during
// the test: real kernel, real eBPF, real OTLP/gRPC export into a receiver here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as http from 'node:http';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, waitForStats, freshStats, Service, RunningAgent } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let bin: string;

before(async () => {
  bin = serviceBinary('demo-service');
  recv = await startOtlpReceiver({ grpc: true, http: false });
  svc = await startService(bin);
  agent = await attachAgent(['--pid', String(svc.pid)], {
    OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e,team=agents',
  });
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  assert.equal(code, 0, `agent exit code; stderr:\n${agent?.stderr.text}`);
});

const nowNs = () => BigInt(Date.now()) * 1_000_000n;
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(p: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: svc.port, path: p, headers, agent: keepAlive }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

async function spansFor(pred: (s: ReceivedSpan) => boolean, n: number, timeoutMs = 15_000): Promise<ReceivedSpan[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = recv.spans().filter(pred);
    if (got.length >= n || Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('one SERVER span per request with the HTTP semantic-convention attributes', async () => {
  const t0 = nowNs();
  assert.equal(await get('/users/42?verbose=true&x=%20y', { 'user-agent': 'e2e-client/1.0' }), 200);
  const t1 = nowNs();
  const [s] = await spansFor((x) => x.attributes['url.path'] === '/users/42', 1);
  assert.ok(s, 'span arrived');
  // axum's matched route names the span (http.route) over HTTP/1 too.
  assert.equal(s.name, 'GET /users/{id}');
  assert.equal(s.kind, 2);
  assert.deepEqual(s.attributes, {
    'http.request.method': 'GET',
    'url.path': '/users/42',
    'url.query': 'verbose=true&x=%20y',
    'url.scheme': 'http',
    'server.address': '127.0.0.1',
    'server.port': svc.port,
    'user_agent.original': 'e2e-client/1.0',
    'network.protocol.version': '1.1',
    'http.response.status_code': 200,
    'http.route': '/users/{id}',
  });
  assert.equal(s.status.code, 0);
  assert.equal(s.parentSpanId, '');
  assert.match(s.traceId, /^[0-9a-f]{32}$/);
  assert.match(s.spanId, /^[0-9a-f]{16}$/);
  assert.equal(s.flags & 0xff, 1);
  // Times: inside the client's own send/receive window (clock offset error is
  // sub-millisecond; allow 2 ms), and ordered.
  assert.ok(s.startTimeUnixNano >= t0 - 2_000_000n, `start ${s.startTimeUnixNano} before request sent ${t0}`);
  assert.ok(s.endTimeUnixNano <= t1 + 2_000_000n, `end ${s.endTimeUnixNano} after response received ${t1}`);
  assert.ok(s.endTimeUnixNano > s.startTimeUnixNano);
  assert.equal(s.scope.name, 'otel-rust-agent/hyper');
  assert.deepEqual(
    Object.fromEntries(Object.entries(s.resource).filter(([k]) => !k.startsWith('telemetry.') && k !== 'process.command')),
    {
      'service.name': 'demo-service',
      'process.pid': svc.pid,
      'process.executable.name': 'demo-service',
      'process.executable.path': bin,
      'process.runtime.name': 'rustc',
      'process.runtime.version': s.resource['process.runtime.version'],
      'host.name': os.hostname(),
      'deployment.environment.name': 'e2e',
      team: 'agents',
    });
  assert.match(String(s.resource['process.runtime.version']), /^1\.\d+\.\d+$/);
  assert.equal(s.resource['telemetry.sdk.language'], 'rust');
  assert.equal(s.resource['telemetry.sdk.name'], 'opentelemetry');
  assert.equal(s.resource['telemetry.distro.name'], 'otel-rust-agent');
});

test('5xx is an ERROR with error.type; 404 is not an error', async () => {
  assert.equal(await get('/fail'), 500);
  assert.equal(await get('/no/such/route'), 404);
  const [fail] = await spansFor((x) => x.attributes['url.path'] === '/fail', 1);
  const [miss] = await spansFor((x) => x.attributes['url.path'] === '/no/such/route', 1);
  assert.equal(fail.attributes['http.response.status_code'], 500);
  assert.equal(fail.attributes['error.type'], '500');
  assert.equal(fail.status.code, 2);
  assert.equal(miss.attributes['http.response.status_code'], 404);
  assert.equal(miss.attributes['error.type'], undefined);
  // No route matched: the name stays the method, and there is no http.route.
  assert.equal(fail.name, 'GET /fail');
  assert.equal(miss.name, 'GET');
  assert.equal(miss.attributes['http.route'], undefined);
  assert.equal(miss.status.code, 0);
});

test('an incoming traceparent becomes the remote parent', async () => {
  await get('/users/1', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=x' });
  const [s] = await spansFor((x) => x.attributes['url.path'] === '/users/1', 1);
  assert.equal(s.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(s.parentSpanId, 'b7ad6b7169203331');
  assert.equal(s.traceState, 'vendor=x');
  assert.equal(s.flags & 0x300, 0x300, 'parent marked remote');
  // An unsampled caller: parent-based sampling, no span.
  await get('/users/2', { traceparent: '00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203332-00' });
  await get('/users/3');
  await spansFor((x) => x.attributes['url.path'] === '/users/3', 1);
  assert.equal(recv.spans().filter((x) => x.attributes['url.path'] === '/users/2').length, 0);
});

test('a handler that awaits (the task may move threads) is timed from parse to encode', async () => {
  const t0 = nowNs();
  await get('/slow?ms=60');
  const t1 = nowNs();
  const [s] = await spansFor((x) => x.attributes['url.path'] === '/slow', 1);
  const dur = s.endTimeUnixNano - s.startTimeUnixNano;
  assert.ok(dur >= 60_000_000n, `duration ${dur} ns < 60 ms`);
  assert.ok(dur <= t1 - t0 + 2_000_000n, `duration ${dur} ns longer than the client saw`);
});

test('100 keep-alive requests on one connection give exactly 100 spans and 2 probe hits each (+1 per connection)', async () => {
  const before = await freshStats(agent);
  const parts: string[] = [];
  for (let i = 0; i < 100; i++) parts.push(`GET /users/${1000 + i}?run=keepalive HTTP/1.1\r\nHost: 127.0.0.1:${svc.port}\r\n\r\n`);
  // Sequential on one socket: each request waits for the previous response.
  const responses: { status: number }[] = [];
  for (const p of parts) responses.push(...(await rawExchangeOn(p)));
  assert.equal(responses.length, 100);
  const spans = await spansFor((x) => x.attributes['url.query'] === 'run=keepalive', 100);
  await new Promise((r) => setTimeout(r, 500)); // nothing extra may arrive
  const all = recv.spans().filter((x) => x.attributes['url.query'] === 'run=keepalive');
  assert.equal(all.length, 100);
  assert.deepEqual(new Set(all.map((s) => s.attributes['url.path'])).size, 100);
  assert.equal(new Set(spans.map((s) => s.spanId)).size, 100);
  const after = await waitForStats(agent, (s) => s.probes.find((p) => p.probe === 'encode_status')!.hits - before.probes.find((p) => p.probe === 'encode_status')!.hits >= 100);
  const delta = (probe: string) => after.probes.find((p) => p.probe === probe)!.hits - before.probes.find((p) => p.probe === probe)!.hits;
  // The status is read at encode entry: one hit per response; the
  // layout-free fallback probes stay detached.
  assert.equal(delta('encode_status'), 100);
  assert.equal(delta('encode'), 0);
  assert.equal(delta('encode_ret'), 0);
  // One parse per request, plus one for the connection's first read (hyper-util
  // hands hyper the 24-byte HTTP/2-preface sniff first).
  assert.equal(delta('parse'), 101);
  for (const p of after.probes) {
    assert.equal(p.drops, 0);
    assert.equal(p.badLayout, 0);
  }
});

// One persistent raw connection for the keep-alive test.
let ka: import('node:net').Socket | undefined;
let kaBuf = '';
let kaWaiters: ((r: { status: number }[]) => void)[] = [];
async function rawExchangeOn(req: string): Promise<{ status: number }[]> {
  const net = await import('node:net');
  if (!ka) {
    ka = net.connect(svc.port, '127.0.0.1');
    ka.on('data', (d) => {
      kaBuf += d.toString('latin1');
      for (;;) {
        const end = kaBuf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length:\s*(\d+)/i.exec(kaBuf.slice(0, end))?.[1] ?? 0);
        if (kaBuf.length < end + 4 + len) return;
        const status = Number(kaBuf.slice(9, 12));
        kaBuf = kaBuf.slice(end + 4 + len);
        kaWaiters.shift()?.([{ status }]);
      }
    });
    await new Promise((r) => ka!.once('connect', r));
  }
  return new Promise((resolve) => { kaWaiters.push(resolve); ka!.write(req); });
}
after(() => ka?.destroy());

test('pipelined requests in one write each get their own span', async () => {
  let burst = '';
  for (let i = 0; i < 5; i++) burst += `GET /users/${i}?run=pipeline HTTP/1.1\r\nHost: 127.0.0.1:${svc.port}\r\n\r\n`;
  const res = await rawExchange(svc.port, [burst], 5);
  assert.deepEqual(res.map((r) => r.body), ['user 0', 'user 1', 'user 2', 'user 3', 'user 4']);
  await spansFor((x) => x.attributes['url.query'] === 'run=pipeline', 5);
  await new Promise((r) => setTimeout(r, 300));
  const spans = recv.spans().filter((x) => x.attributes['url.query'] === 'run=pipeline');
  assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), ['/users/0', '/users/1', '/users/2', '/users/3', '/users/4']);
  // In order on the connection: each span starts after the previous one ended.
  const byStart = [...spans].sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
  for (let i = 1; i < byStart.length; i++) assert.ok(byStart[i].startTimeUnixNano >= byStart[i - 1].endTimeUnixNano);
});

test('pipelined: a request without traceparent before one with it is a root of its own trace, not the next request\'s', async () => {
  // The parse probe reads the whole buffer, which holds the next request too: its traceparent must not be taken.
  const trace = '5bf92f3577b34da6a3ce929d0e0e4799';
  const burst = `GET /users/1?run=pipe-tp HTTP/1.1\r\nHost: 127.0.0.1:${svc.port}\r\n\r\n` +
    `GET /users/2?run=pipe-tp HTTP/1.1\r\nHost: 127.0.0.1:${svc.port}\r\ntraceparent: 00-${trace}-00f067aa0ba902b8-01\r\ntracestate: k=v\r\n\r\n`;
  const res = await rawExchange(svc.port, [burst], 2);
  assert.deepEqual(res.map((r) => r.status), [200, 200]);
  await spansFor((x) => x.attributes['url.query'] === 'run=pipe-tp', 2);
  await new Promise((r) => setTimeout(r, 300));
  const spans = recv.spans().filter((x) => x.attributes['url.query'] === 'run=pipe-tp');
  assert.equal(spans.length, 2);
  const first = spans.find((s) => s.attributes['url.path'] === '/users/1')!;
  const second = spans.find((s) => s.attributes['url.path'] === '/users/2')!;
  assert.equal(first.parentSpanId, '');
  assert.notEqual(first.traceId, trace);
  assert.equal(first.traceState, '');
  assert.equal(second.traceId, trace);
  assert.equal(second.parentSpanId, '00f067aa0ba902b8');
  assert.equal(second.traceState, 'k=v');
});

test('a request head that arrives in several reads gives one span with every header', async () => {
  const res = await rawExchange(svc.port, [
    'GET /users/77?run=split HT', 40,
    'TP/1.1\r\nHost: split.example:8080\r\nUser-Ag', 40,
    'ent: split-client/2\r\n', 40, '\r\n',
  ], 1);
  assert.equal(res[0].status, 200);
  await spansFor((x) => x.attributes['url.query'] === 'run=split', 1);
  await new Promise((r) => setTimeout(r, 300));
  const spans = recv.spans().filter((x) => x.attributes['url.query'] === 'run=split');
  assert.equal(spans.length, 1);
  assert.equal(spans[0].attributes['server.address'], 'split.example');
  assert.equal(spans[0].attributes['server.port'], 8080);
  assert.equal(spans[0].attributes['user_agent.original'], 'split-client/2');
});

test('POST with a body and an unknown method', async () => {
  const res = await rawExchange(svc.port, [
    `POST /echo?run=post HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello`,
    `PURGE /thing?run=purge HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
  ], 2);
  assert.deepEqual(res.map((r) => r.status), [200, 404]);
  const [post] = await spansFor((x) => x.attributes['url.query'] === 'run=post', 1);
  const [purge] = await spansFor((x) => x.attributes['url.query'] === 'run=purge', 1);
  assert.equal(post.name, 'POST /echo');
  assert.equal(post.attributes['server.port'], 80);
  assert.equal(purge.name, 'HTTP');
  assert.equal(purge.attributes['http.request.method'], '_OTHER');
  assert.equal(purge.attributes['http.request.method_original'], 'PURGE');
  assert.equal(purge.attributes['http.response.status_code'], 404);
});

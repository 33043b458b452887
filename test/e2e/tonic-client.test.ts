// End to end: gRPC CLIENT spans of a service (axum 0.8) whose handler calls
// the tonic-server fixture with a tonic 0.14 client (Channel: hyper 1 over
// h2 0.4). Both processes are traced in the same run (one agent each), so
// both ends of every call are checked: the CLIENT span (h2-client, parent =
// the handler's server span via tonic-client) and the tonic SERVER span.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats } from '../helpers/procs';

let recv: OtlpReceiver;
let server: Service;
let caller: Service;
let serverAgent: RunningAgent;
let agent: RunningAgent;
let target = '';

before(async () => {
  recv = await startOtlpReceiver({ grpc: false, http: true });
  server = await startService(serviceBinary('tonic-server'));
  caller = await startService(serviceBinary('tonic-client'));
  target = `http://127.0.0.1:${server.port}`;
  const otlp = ['--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint];
  serverAgent = await attachAgent(['--pid', String(server.pid), ...otlp, '--service-name', 'catalog']);
  agent = await attachAgent(['--pid', String(caller.pid), ...otlp, '--service-name', 'caller'], { OTEL_RUST_AGENT_CLIENT_TIMEOUT_MS: '1500' });
});

after(async () => {
  const code = await agent?.stop();
  const scode = await serverAgent?.stop();
  await caller?.stop();
  await server?.stop();
  await recv?.close();
  assert.equal(code, 0, agent?.stderr.text);
  assert.equal(scode, 0, serverAgent?.stderr.text);
});

async function grpc(q: Record<string, string | number>): Promise<string[]> {
  const qs = new URLSearchParams(Object.entries({ target, ...q }).map(([k, v]) => [k, String(v)])).toString();
  const res = await fetch(`http://127.0.0.1:${caller.port}/grpc?${qs}`);
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n');
}

async function settle(pred: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 400)); // anything extra would show now
}

const svcName = (s: ReceivedSpan) => String(s.resource?.['service.name'] ?? '');
const clientSpans = () => recv.spans().filter((s) => s.kind === 3);
const grpcServerSpans = () => recv.spans().filter((s) => s.kind === 2 && s.attributes['rpc.system.name'] === 'grpc');
const handlerSpans = () => recv.spans().filter((s) => s.kind === 2 && s.attributes['url.path'] === '/grpc');
const hits = (s: AgentStats, module: string, probe: string) => s.probes.find((p) => p.module === module && p.probe === probe)?.hits ?? 0;
const PROBES: [string, string][] = [['tonic-client', 'prepare_request'], ['h2-client', 'client_send_headers'], ['h2-client', 'client_recv_headers'], ['h2-client', 'client_recv_trailers']];
async function hitsSince(before: AgentStats, expectSendHeaders: number): Promise<number[]> {
  const after = await waitForStats(agent, (s) => hits(s, 'h2-client', 'client_recv_headers') - hits(before, 'h2-client', 'client_recv_headers') >= expectSendHeaders);
  return PROBES.map(([m, p]) => hits(after, m, p) - hits(before, m, p));
}

test('tonic unary OK: one CLIENT span with the exact RPC attributes, child of the handler span; the server end traced too; 4 hits', async () => {
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await grpc({ method: 'get', id: 7 }), ['0']);
  await settle(() => clientSpans().length >= 1 && grpcServerSpans().length >= 1 && handlerSpans().length >= 1);
  const cs = clientSpans();
  assert.equal(cs.length, 1);
  const c = cs[0];
  assert.equal(c.name, 'shop.v1.Catalog/GetProduct');
  assert.deepEqual(c.attributes, {
    'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'OK',
    'server.address': '127.0.0.1', 'server.port': server.port,
  });
  assert.equal(c.status.code, 0);
  assert.equal(c.scope.name, 'otel-rust-agent/tonic');
  const [h] = handlerSpans();
  assert.equal(c.traceId, h.traceId);
  assert.equal(c.parentSpanId, h.spanId);
  assert.ok(c.startTimeUnixNano >= h.startTimeUnixNano && c.endTimeUnixNano <= h.endTimeUnixNano);
  assert.ok(c.endTimeUnixNano > c.startTimeUnixNano);
  // The other end: the tonic server's span of the same call.
  const ss = grpcServerSpans();
  assert.equal(ss.length, 1);
  assert.equal(ss[0].name, 'shop.v1.Catalog/GetProduct');
  assert.equal(ss[0].attributes['rpc.status_code'], 'OK');
  assert.ok(ss[0].startTimeUnixNano >= c.startTimeUnixNano && ss[0].endTimeUnixNano <= c.endTimeUnixNano);
  // prepare_request, send_headers, recv_headers (response head), recv_trailers (grpc-status).
  assert.deepEqual(await hitsSince(before, 1), [1, 1, 1, 1]);
});

test('tonic error codes: trailers-only NOT_FOUND, INTERNAL in the trailers after two messages, streaming OK; ERROR for every code but OK', async () => {
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await grpc({ method: 'get', id: -5 }), ['5']);
  assert.deepEqual(await grpc({ method: 'list', count: 2, fail: 13 }), ['13 2']);
  assert.deepEqual(await grpc({ method: 'list', count: 3 }), ['0 3']);
  assert.deepEqual(await grpc({ method: 'get', id: -3 }), ['3']);
  await settle(() => clientSpans().length >= 4 && grpcServerSpans().length >= 4);
  const cs = clientSpans();
  assert.equal(cs.length, 4);
  const handlers = handlerSpans();
  assert.equal(handlers.length, 4);
  for (const c of cs) {
    const h = handlers.find((x) => x.spanId === c.parentSpanId);
    assert.ok(h, 'each client span is a child of its handler span');
    assert.equal(c.traceId, h.traceId);
  }
  const get = cs.filter((s) => s.name === 'shop.v1.Catalog/GetProduct');
  const list = cs.filter((s) => s.name === 'shop.v1.Catalog/ListProducts');
  assert.equal(get.length, 2);
  assert.equal(list.length, 2);
  const notFound = get.find((s) => s.attributes['rpc.status_code'] === 'NOT_FOUND')!;
  assert.deepEqual(notFound.attributes, {
    'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'NOT_FOUND',
    'server.address': '127.0.0.1', 'server.port': server.port, 'error.type': 'NOT_FOUND',
  });
  assert.deepEqual(notFound.status, { code: 2, message: 'product -5 failed' });
  // INVALID_ARGUMENT is not an error for a server span, but is for a client span.
  const invalid = get.find((s) => s.attributes['rpc.status_code'] === 'INVALID_ARGUMENT')!;
  assert.equal(invalid.status.code, 2);
  assert.equal(invalid.attributes['error.type'], 'INVALID_ARGUMENT');
  const sInvalid = grpcServerSpans().find((s) => s.attributes['rpc.status_code'] === 'INVALID_ARGUMENT')!;
  assert.equal(sInvalid.status.code, 0);
  const internal = list.find((s) => s.attributes['rpc.status_code'] === 'INTERNAL')!;
  assert.deepEqual(internal.attributes, {
    'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/ListProducts', 'rpc.status_code': 'INTERNAL',
    'server.address': '127.0.0.1', 'server.port': server.port, 'error.type': 'INTERNAL',
  });
  assert.deepEqual(internal.status, { code: 2, message: 'listing broke' });
  const ok = list.find((s) => s.attributes['rpc.status_code'] === 'OK')!;
  assert.equal(ok.status.code, 0);
  assert.equal(ok.attributes['error.type'], undefined);
  // 4 calls; trailers for the two streaming calls only (the two failing unary calls are trailers-only).
  assert.deepEqual(await hitsSince(before, 4), [4, 4, 4, 2]);
  // Answered calls, errors included, never pass Status::from_error (transport failures only).
  const after = await freshStats(agent);
  assert.equal(hits(after, 'tonic-client', 'status_from_error') - hits(before, 'tonic-client', 'status_from_error'), 0);
});

test('tonic: 100 concurrent calls from one handler task give exactly 100 CLIENT spans, all children of the handler span, 100 server spans', async () => {
  recv.clear();
  const before = await freshStats(agent);
  const out = await grpc({ method: 'get', id: 1, n: 100 });
  assert.equal(out.length, 100);
  assert.ok(out.every((l) => l === '0'));
  await settle(() => clientSpans().length >= 100 && grpcServerSpans().length >= 100);
  const cs = clientSpans();
  assert.equal(cs.length, 100);
  const [h] = handlerSpans();
  for (const c of cs) {
    assert.deepEqual(c.attributes, {
      'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'OK',
      'server.address': '127.0.0.1', 'server.port': server.port,
    });
    assert.equal(c.parentSpanId, h.spanId);
    assert.equal(c.traceId, h.traceId);
  }
  assert.equal(grpcServerSpans().length, 100);
  assert.deepEqual(await hitsSince(before, 100), [100, 100, 100, 100]);
  const after = await freshStats(agent);
  assert.equal(after.spans['h2-client'].pending, 0);
  assert.equal(after.spans['h2-client'].parentHits - (before.spans['h2-client']?.parentHits ?? 0), 100);
});

test('tonic: calls made in spawned tasks inherit the handler\'s server span (issue 8 spawn linking)', async () => {
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await grpc({ method: 'get', id: 2, n: 3, mode: 'spawn' }), ['0', '0', '0']);
  await settle(() => clientSpans().length >= 3 && recv.spans().some((s) => s.kind === 2));
  const cs = clientSpans();
  assert.equal(cs.length, 3);
  const servers = recv.spans().filter((s) => s.kind === 2);
  // The caller's handler span (the downstream gRPC server's spans are in the receiver too).
  const parent = servers.find((s) => s.spanId === cs[0].parentSpanId);
  assert.ok(parent, JSON.stringify(cs.map((c) => c.parentSpanId)));
  assert.equal(parent.resource['service.name'], servers.find((s) => s.resource['service.name'] === parent.resource['service.name'])!.resource['service.name']);
  assert.ok(!cs.some((c) => c.parentSpanId === '' ), 'none left a root');
  for (const c of cs) { assert.equal(c.parentSpanId, parent.spanId); assert.equal(c.traceId, parent.traceId); }
  assert.equal(parent.parentSpanId, '', 'the parent is the request\'s own server span, not a downstream one');
  assert.deepEqual(await hitsSince(before, 3), [3, 3, 3, 3]);
});

test('tonic: a server that is down (no stream) gives one CLIENT span UNAVAILABLE, ERROR, the handler span as parent, ended at the transport error; 2 hits', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
  recv.clear();
  const before = await freshStats(agent);
  const out = await grpc({ target: `http://127.0.0.1:${port}`, method: 'get', id: 1 });
  assert.equal(out.length, 1);
  assert.equal(out[0].split(' ')[0], '14');
  await settle(() => clientSpans().length >= 1 && handlerSpans().length >= 1);
  const cs = clientSpans();
  assert.equal(cs.length, 1);
  const c = cs[0];
  assert.equal(c.name, 'shop.v1.Catalog/GetProduct');
  // No connection: the server's address is not known at the call's layer (tonic's prepare_request sees the path only).
  assert.deepEqual(c.attributes, {
    'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'UNAVAILABLE', 'error.type': 'UNAVAILABLE',
  });
  assert.equal(c.status.code, 2);
  assert.equal(c.scope.name, 'otel-rust-agent/tonic');
  const h = handlerSpans().find((x) => x.spanId === c.parentSpanId);
  assert.ok(h, 'child of the handler span');
  assert.equal(c.traceId, h.traceId);
  assert.ok(c.endTimeUnixNano > c.startTimeUnixNano && c.endTimeUnixNano <= h.endTimeUnixNano);
  const after = await freshStats(agent);
  const dropped = (s: AgentStats) => s.spans.context?.clientCallsDropped ?? 0;
  assert.equal(dropped(after) - dropped(before), 0);
  const t = (s: AgentStats, k: string) => s.spans['tonic-client']?.[k] ?? 0;
  assert.equal(t(after, 'unavailableSpans') - t(before, 'unavailableSpans'), 1);
  assert.equal(hits(after, 'tonic-client', 'prepare_request') - hits(before, 'tonic-client', 'prepare_request'), 1);
  assert.equal(hits(after, 'tonic-client', 'status_from_error') - hits(before, 'tonic-client', 'status_from_error'), 1);
  assert.equal(hits(after, 'h2-client', 'client_send_headers') - hits(before, 'h2-client', 'client_send_headers'), 0);
  void svcName;
});

test("the caller is an h2 server too: its own HTTP/2 response heads pass send_headers and are skipped (a hit, no event, no CLIENT span)", async () => {
  recv.clear();
  const before = await freshStats(agent);
  const out = execFileSync('curl', ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${caller.port}/`], { encoding: 'utf8' });
  assert.equal(out, '2 200');
  await settle(() => recv.spans().some((s) => s.kind === 2));
  assert.equal(clientSpans().length, 0);
  const after = await waitForStats(agent, (s) => hits(s, 'h2-client', 'client_send_headers') - hits(before, 'h2-client', 'client_send_headers') >= 1);
  const d = (p: string, k: 'hits' | 'events') => (after.probes.find((x) => x.module === 'h2-client' && x.probe === p)?.[k] ?? 0) - (before.probes.find((x) => x.module === 'h2-client' && x.probe === p)?.[k] ?? 0);
  assert.deepEqual([d('client_send_headers', 'hits'), d('client_send_headers', 'events'), d('client_recv_headers', 'hits'), d('client_recv_headers', 'events')], [1, 0, 1, 0]);
});

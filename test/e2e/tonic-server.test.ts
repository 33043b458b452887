// End to end: gRPC server spans on the tonic 0.14 fixture (hyper 1, h2 0.4),
// called through @grpc/grpc-js over one long-lived channel.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, waitForStats, freshStats, Service, RunningAgent, AgentStats } from '../helpers/procs';
import { CatalogClient, getProductRequest, listProductsRequest } from '../helpers/grpc-client';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let client: CatalogClient;

before(async () => {
  recv = await startOtlpReceiver({ grpc: true, http: false });
  svc = await startService(serviceBinary('tonic-server'));
  agent = await attachAgent(['--pid', String(svc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
  client = new CatalogClient(`127.0.0.1:${svc.port}`);
});

after(async () => {
  client?.close();
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

const hits = (s: AgentStats, module: string, probe: string) => s.probes.find((p) => p.module === module && p.probe === probe)?.hits ?? 0;
const byTrace = (traceId: string) => (s: ReceivedSpan) => s.traceId === traceId;
let traceSeq = 0;
/** A sampled traceparent with a fresh trace id, so each call's span can be found exactly. */
function traceparent(): { traceId: string; header: Record<string, string> } {
  const traceId = (0xabc00000 + ++traceSeq).toString(16).padStart(32, '0');
  return { traceId, header: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } };
}

test('unary OK: one SERVER span named after the method, with the RPC attributes and the remote parent', async () => {
  const t = traceparent();
  const r = await client.unary('GetProduct', getProductRequest(7), { ...t.header, tracestate: 'shop=1' });
  assert.equal(r.code, 0);
  const [s] = await spansFor(byTrace(t.traceId), 1);
  assert.ok(s);
  assert.equal(s.name, 'shop.v1.Catalog/GetProduct');
  assert.equal(s.kind, 2);
  assert.deepEqual(s.attributes, {
    'rpc.system.name': 'grpc',
    'rpc.method': 'shop.v1.Catalog/GetProduct',
    'rpc.status_code': 'OK',
    'server.address': '127.0.0.1',
    'server.port': svc.port,
  });
  assert.equal(s.status.code, 0);
  assert.equal(s.parentSpanId, '00f067aa0ba902b7');
  assert.equal(s.traceState, 'shop=1');
  assert.equal(s.scope.name, 'otel-rust-agent/tonic');
});

test('unary errors (trailers-only responses): the status from the header block; ERROR exactly for the server error codes', async () => {
  // code -> span status ERROR?
  const cases: [number, string, boolean][] = [
    [5, 'NOT_FOUND', false], [3, 'INVALID_ARGUMENT', false], [16, 'UNAUTHENTICATED', false], [7, 'PERMISSION_DENIED', false],
    [13, 'INTERNAL', true], [14, 'UNAVAILABLE', true], [4, 'DEADLINE_EXCEEDED', true], [2, 'UNKNOWN', true], [15, 'DATA_LOSS', true],
  ];
  for (const [code, name, error] of cases) {
    const t = traceparent();
    const r = await client.unary('GetProduct', getProductRequest(-code), t.header);
    assert.equal(r.code, code);
    const [s] = await spansFor(byTrace(t.traceId), 1);
    assert.ok(s, `span for ${name}`);
    assert.equal(s.name, 'shop.v1.Catalog/GetProduct');
    assert.equal(s.attributes['rpc.status_code'], name);
    assert.equal(s.attributes['error.type'], error ? name : undefined, name);
    assert.equal(s.status.code, error ? 2 : 0, name);
    if (error) assert.equal(s.status.message, `product ${-code} failed`);
  }
});

test('server streaming: OK after the messages, an error in the trailers after messages, and a trailers-only error', async () => {
  const cases: [number, number, string][] = [[3, 0, 'OK'], [2, 15, 'DATA_LOSS'], [0, 7, 'PERMISSION_DENIED']];
  for (const [count, fail, name] of cases) {
    const t = traceparent();
    const t0 = BigInt(Date.now()) * 1_000_000n;
    const r = await client.serverStream('ListProducts', listProductsRequest(count, fail), t.header);
    const t1 = BigInt(Date.now()) * 1_000_000n;
    assert.equal(r.code, fail);
    assert.equal(r.messages, count);
    const [s] = await spansFor(byTrace(t.traceId), 1);
    assert.ok(s, `span for ${name}`);
    assert.equal(s.name, 'shop.v1.Catalog/ListProducts');
    assert.equal(s.attributes['rpc.method'], 'shop.v1.Catalog/ListProducts');
    assert.equal(s.attributes['rpc.status_code'], name);
    assert.equal(s.status.code, name === 'DATA_LOSS' ? 2 : 0);
    assert.ok(s.startTimeUnixNano >= t0 - 2_000_000n && s.endTimeUnixNano <= t1 + 2_000_000n);
  }
});

test('an unknown method is _OTHER with rpc.method_original, UNIMPLEMENTED', async () => {
  const t = traceparent();
  const r = await client.unary('NoSuchMethod', getProductRequest(1), t.header);
  assert.equal(r.code, 12);
  const [s] = await spansFor(byTrace(t.traceId), 1);
  assert.ok(s);
  assert.equal(s.name, 'grpc');
  assert.deepEqual(s.attributes, {
    'rpc.system.name': 'grpc', 'rpc.method': '_OTHER', 'rpc.method_original': 'shop.v1.Catalog/NoSuchMethod',
    'rpc.status_code': 'UNIMPLEMENTED', 'error.type': 'UNIMPLEMENTED', 'server.address': '127.0.0.1', 'server.port': svc.port,
  });
  assert.equal(s.status.code, 2);
});

test('1000 calls over one long-lived channel: 1000 spans, each with its method and status; 3 probe hits per call, 2 when trailers-only', async () => {
  const before = await freshStats(agent);
  const expect = new Map<string, number>();
  let trailersOnly = 0;
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < 1000; i++) {
    const unary = i % 2 === 0;
    const code = [0, 0, 0, 5, 13][i % 5];
    const method = unary ? 'GetProduct' : 'ListProducts';
    const key = `${method}:${['OK', '', '', '', '', 'NOT_FOUND', '', '', '', '', '', '', '', 'INTERNAL'][code]}`;
    expect.set(key, (expect.get(key) ?? 0) + 1);
    // Unary errors are trailers-only; streaming errors come after one message, in the trailers.
    if (unary && code !== 0) trailersOnly++;
    calls.push(unary ? client.unary(method, getProductRequest(code ? -code : i), { 'x-run': 'load' })
      : client.serverStream(method, listProductsRequest(1, code), { 'x-run': 'load' }));
    if (calls.length >= 50) await Promise.all(calls.splice(0));
  }
  await Promise.all(calls);
  const after = await waitForStats(agent, (st) => (st.spans['h2-server']?.spans ?? 0) - (before.spans['h2-server']?.spans ?? 0) >= 1000, 30_000);
  assert.equal(hits(after, 'h2-server', 'recv_headers') - hits(before, 'h2-server', 'recv_headers'), 1000);
  assert.equal(hits(after, 'h2-server', 'send_response') - hits(before, 'h2-server', 'send_response'), 1000);
  assert.equal(hits(after, 'tonic-server', 'send_trailers') - hits(before, 'tonic-server', 'send_trailers'), 1000 - trailersOnly);
  await spansFor((x) => x.parentSpanId === '' && x.attributes['rpc.system.name'] === 'grpc', 1000, 30_000);
  // Every load span (no traceparent was sent) by method and status.
  await new Promise((r) => setTimeout(r, 500));
  const got = new Map<string, number>();
  for (const s of recv.spans().filter((x) => x.parentSpanId === '' && x.attributes['rpc.system.name'] === 'grpc' && x.attributes['rpc.method'] !== '_OTHER')) {
    const k = `${String(s.attributes['rpc.method']).split('/')[1]}:${s.attributes['rpc.status_code']}`;
    got.set(k, (got.get(k) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries([...expect].sort()));
  for (const p of after.probes) assert.equal(p.badLayout, 0, `${p.module}/${p.probe} bad layout`);
});

test('OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup adds rpc.system, rpc.service and rpc.grpc.status_code', async () => {
  assert.equal(await agent.stop(), 0, agent.stderr.text);
  agent = await attachAgent(['--pid', String(svc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint, OTEL_SEMCONV_STABILITY_OPT_IN: 'rpc/dup' });
  const t = traceparent();
  assert.equal((await client.unary('GetProduct', getProductRequest(-5), t.header)).code, 5);
  const [s] = await spansFor(byTrace(t.traceId), 1);
  assert.ok(s);
  assert.deepEqual(s.attributes, {
    'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'NOT_FOUND',
    'server.address': '127.0.0.1', 'server.port': svc.port,
    'rpc.system': 'grpc', 'rpc.service': 'shop.v1.Catalog', 'rpc.grpc.status_code': 5,
  });
});

// Export to a real OpenTelemetry Collector (v0.165.0, built from the Go module
// proxy by scripts/deploy-tools.sh otelcol): the agent traces a hyper 0.14
// service this test starts and exports over OTLP/gRPC (plain, and gzip set by
// OTEL_EXPORTER_OTLP_COMPRESSION) and over OTLP/HTTP protobuf (--compression
// gzip). The collector decodes each request with the official pdata code and
// forwards it to an in-test receiver: the spans are checked exactly there
// (names, kinds, attributes, status, parent links, resource, scope, counts),
// and a pass-through between the agent and the collector checks what was on
// the wire (gzip or not, request framing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { startOtlpReceiver, decodeExportRequest, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, waitForStats, Service } from '../helpers/procs';
import { otelcolBinary, startCollector, startWireTap, http1Requests, grpcMessages, Collector } from '../helpers/otelcol';

let svc: Service;
let col: Collector;
/** What the collector's gRPC receiver took, and its HTTP receiver. */
let viaGrpc: OtlpReceiver;
let viaHttp: OtlpReceiver;

before(async () => {
  const bin = otelcolBinary();
  viaGrpc = await startOtlpReceiver({ grpc: false, http: true });
  viaHttp = await startOtlpReceiver({ grpc: false, http: true });
  col = await startCollector(bin, { forwardGrpcTo: viaGrpc.httpEndpoint, forwardHttpTo: viaHttp.httpEndpoint });
  svc = await startService(serviceBinary('hyper014-server'));
});

after(async () => {
  await svc?.stop();
  await col?.stop();
  await viaGrpc?.close();
  await viaHttp?.close();
});

const KEEPALIVE = 20;
const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';

/** 3 distinct requests, one with a sampled traceparent, then KEEPALIVE more on the same connection (hyper014-server: 200 on /, 503 on /fail, 404 elsewhere). */
async function traffic(tag: string): Promise<void> {
  const parts: (string | number)[] = [
    `GET /?run=${tag} HTTP/1.1\r\nHost: localhost:${svc.port}\r\nUser-Agent: collector-e2e/1\r\n` +
      `traceparent: 00-${PARENT_TRACE}-${PARENT_SPAN}-01\r\n\r\n`,
    `GET /fail HTTP/1.1\r\nHost: localhost:${svc.port}\r\n\r\n`,
    `DELETE /missing HTTP/1.1\r\nHost: localhost:${svc.port}\r\n\r\n`,
  ];
  for (let i = 0; i < KEEPALIVE; i++) parts.push(`GET /?ka=${i} HTTP/1.1\r\nHost: localhost:${svc.port}\r\n\r\n`, 2);
  const res = await rawExchange(svc.port, parts, 3 + KEEPALIVE, 20_000);
  assert.deepEqual(res.map((r) => r.status), [200, 503, 404, ...Array(KEEPALIVE).fill(200)]);
}

function checkSpans(spans: ReceivedSpan[], tag: string, serviceName: string): void {
  const total = 3 + KEEPALIVE;
  assert.equal(spans.length, total);
  const where = (pred: (s: ReceivedSpan) => boolean, what: string) => { const s = spans.filter(pred); assert.equal(s.length, 1, what); return s[0]; };
  const by = (p: string) => where((x) => x.attributes['url.path'] === p && !('url.query' in x.attributes && x.attributes['url.query'] !== `run=${tag}`), p);
  const root = by('/');
  assert.equal(root.name, 'GET');
  assert.equal(root.kind, 2);
  assert.deepEqual(root.attributes, {
    'http.request.method': 'GET', 'url.path': '/', 'url.query': `run=${tag}`, 'url.scheme': 'http',
    'server.address': 'localhost', 'server.port': svc.port, 'user_agent.original': 'collector-e2e/1',
    'network.protocol.version': '1.1', 'http.response.status_code': 200,
  });
  assert.deepEqual(root.status, { code: 0, message: '' });
  // The caller's context, through the agent and the collector.
  assert.equal(root.traceId, PARENT_TRACE);
  assert.equal(root.parentSpanId, PARENT_SPAN);
  const fail = by('/fail');
  assert.equal(fail.status.code, 2);
  assert.equal(fail.attributes['error.type'], '503');
  assert.equal(fail.attributes['http.response.status_code'], 503);
  const missing = by('/missing');
  assert.equal(missing.name, 'DELETE');
  assert.equal(missing.attributes['http.response.status_code'], 404);
  for (let i = 0; i < KEEPALIVE; i++) {
    const s = where((x) => x.attributes['url.query'] === `ka=${i}`, `?ka=${i}`);
    assert.equal(s.name, 'GET');
    assert.equal(s.attributes['url.path'], '/');
    assert.equal(s.attributes['http.response.status_code'], 200);
  }
  const others = spans.filter((s) => s !== root);
  for (const s of others) {
    assert.equal(s.parentSpanId, '', `${s.attributes['url.path']}?${s.attributes['url.query'] ?? ''}`);
    assert.match(s.traceId, /^[0-9a-f]{32}$/);
  }
  assert.equal(new Set(others.map((s) => s.traceId)).size, others.length, 'one trace per request without a traceparent');
  assert.equal(new Set(spans.map((s) => s.spanId)).size, total);
  for (const s of spans) {
    assert.match(s.spanId, /^[0-9a-f]{16}$/);
    assert.equal(s.kind, 2);
    assert.ok(s.endTimeUnixNano >= s.startTimeUnixNano && s.startTimeUnixNano > 1_600_000_000_000_000_000n);
    assert.equal(s.scope.name, 'otel-rust-agent/hyper');
    assert.equal(s.resource['service.name'], serviceName);
    assert.equal(s.resource['process.pid'], svc.pid);
    assert.equal(s.resource['process.executable.name'], 'hyper014-server');
    assert.equal(s.resource['telemetry.distro.name'], 'otel-rust-agent');
  }
}

/** Traces the service, exporting through a wire tap to the collector; returns the spans forwarded and the bytes the agent sent. */
async function exportRun(o: { tag: string; protocol: 'grpc' | 'http/protobuf'; args?: string[]; env?: Record<string, string> }) {
  const rx = o.protocol === 'grpc' ? viaGrpc : viaHttp;
  const other = o.protocol === 'grpc' ? viaHttp : viaGrpc;
  rx.clear();
  other.clear();
  const tap = await startWireTap(o.protocol === 'grpc' ? col.grpcPort : col.httpPort);
  const serviceName = `collector-${o.tag}`;
  const agent = await attachAgent(['--pid', String(svc.pid), '--protocol', o.protocol, '--endpoint', tap.endpoint,
    '--service-name', serviceName, ...(o.args ?? [])], o.env);
  try {
    await traffic(o.tag);
    const total = 3 + KEEPALIVE;
    await rx.waitForSpans(total, 20_000);
    const stats = await waitForStats(agent, (s) => s.export.exported >= total, 15_000);
    await new Promise((r) => setTimeout(r, 300)); // nothing more may come
    assert.equal(rx.spans().length, total);
    assert.equal(other.spans().length, 0, 'the other transport\'s pipeline got nothing');
    assert.equal(stats.export.exported, total);
    assert.equal(stats.export.dropped, 0);
    assert.equal(stats.export.rejected, 0);
    assert.equal(stats.export.failedExports, 0);
    checkSpans(rx.spans(), o.tag, serviceName);
  } finally {
    const code = await agent.stop();
    assert.equal(code, 0, agent.stderr.text);
    assert.doesNotMatch(col.log.text, /\terror\t|\twarn\t/, 'the collector logged no error');
  }
  const sent = tap.sent().filter((b) => b.length > 0);
  await tap.close();
  return { serviceName, sent, total: 3 + KEEPALIVE };
}

test('OTLP/gRPC to the collector: exact spans, resource and parent links', async () => {
  const { sent, total } = await exportRun({ tag: 'grpc', protocol: 'grpc' });
  assert.equal(sent.length, 1, 'one HTTP/2 connection');
  const msgs = grpcMessages(sent[0]);
  assert.ok(msgs.length >= 1);
  assert.ok(msgs.every((m) => !m.compressed), 'uncompressed messages');
  assert.equal(msgs.reduce((a, m) => a + decodeExportRequest(m.message, 'grpc', 0).length, 0), total);
});

test('OTLP/gRPC with gzip (OTEL_EXPORTER_OTLP_COMPRESSION=gzip): compressed messages on the wire, the same spans', async () => {
  const { sent, total } = await exportRun({ tag: 'grpc-gzip', protocol: 'grpc', env: { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' } });
  const msgs = sent.flatMap(grpcMessages);
  assert.ok(msgs.length >= 1);
  assert.ok(msgs.every((m) => m.compressed), 'every message has the compressed flag');
  assert.equal(msgs.reduce((a, m) => a + decodeExportRequest(zlib.gunzipSync(m.message), 'grpc', 0).length, 0), total);
});

test('OTLP/HTTP protobuf with --compression gzip: gzip bodies on the wire, the same spans', async () => {
  const { sent, total } = await exportRun({ tag: 'http-gzip', protocol: 'http/protobuf', args: ['--compression', 'gzip'] });
  const reqs = sent.flatMap(http1Requests);
  assert.ok(reqs.length >= 1);
  let spans = 0;
  for (const r of reqs) {
    assert.match(r.head, /^POST \/v1\/traces HTTP\/1\.1\r\n/);
    assert.match(r.head, /^content-type: application\/x-protobuf$/im);
    assert.match(r.head, /^content-encoding: gzip$/im);
    assert.deepEqual([...r.body.subarray(0, 2)], [0x1f, 0x8b], 'a gzip body');
    spans += decodeExportRequest(zlib.gunzipSync(r.body), 'http', 0).length;
  }
  assert.equal(spans, total);
});

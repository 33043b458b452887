import { recordFromAgentSpan as rec } from '../../src/spans/record';
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as http2 from 'node:http2';
import * as zlib from 'node:zlib';
import {
  createSpanExporter, resolveOtlpUrl, agentVersion,
  ConsoleTreePrinter, formatDurationMs,
  type ExportConfig, type SpanSink,
} from '../../src/export';
import type { AgentSpan, ProcessResource } from '../../src/spans/types';
import { startOtlpReceiver, decodeExportRequest, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { testPki } from '../helpers/tls';

const MS = 1_000_000n;
const T0 = 1_700_000_000_123_456_789n; // an arbitrary Unix time in ns

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const REMOTE_PARENT = '00f067aa0ba902b7';
const ROOT = 'a1a2a3a4a5a6a7a8';
const CHILD1 = 'b1b2b3b4b5b6b7b8';
const CHILD2 = 'c1c2c3c4c5c6c7c8';

const RES_A: ProcessResource = {
  pid: 4242,
  attributes: { 'service.name': 'checkout', 'process.pid': 4242, 'process.executable.name': 'checkout' },
};
const RES_B: ProcessResource = {
  pid: 5151,
  attributes: { 'service.name': 'pricing', 'process.pid': 5151 },
};

function threeSpanTrace(): AgentSpan[] {
  const root: AgentSpan = {
    traceId: TRACE, spanId: ROOT, parentSpanId: REMOTE_PARENT, parentIsRemote: true, traceFlags: 1,
    name: 'GET /users/{id}', kind: 'SERVER',
    startTimeUnixNano: T0, endTimeUnixNano: T0 + 12_345_678n,
    attributes: {
      'http.request.method': 'GET', 'url.path': '/users/42', 'url.query': 'page=2',
      'http.response.status_code': 200, 'http.route': '/users/{id}', 'network.protocol.version': '1.1',
    },
    status: { code: 'UNSET' }, pid: 4242, scope: 'otel-rust-agent/hyper',
  };
  const child1: AgentSpan = {
    traceId: TRACE, spanId: CHILD1, parentSpanId: ROOT, traceFlags: 1,
    name: 'load_user', kind: 'INTERNAL',
    startTimeUnixNano: T0 + 1n * MS, endTimeUnixNano: T0 + 4n * MS,
    attributes: { 'code.function': 'load_user' },
    status: { code: 'UNSET' }, pid: 4242, scope: 'otel-rust-agent/hyper',
  };
  const child2: AgentSpan = {
    traceId: TRACE, spanId: CHILD2, parentSpanId: ROOT, traceFlags: 1,
    name: 'GET', kind: 'CLIENT',
    startTimeUnixNano: T0 + 5n * MS, endTimeUnixNano: T0 + 6_500_000n,
    attributes: {
      'http.request.method': 'GET', 'url.full': 'http://price:8080/api/price',
      'http.response.status_code': 503, 'error.type': '503',
    },
    status: { code: 'ERROR', message: 'upstream unavailable' }, pid: 4242, scope: 'otel-rust-agent/reqwest',
  };
  return [root, child1, child2];
}

function mkSpan(i: number, pid = 4242, extra: Record<string, string> = {}): AgentSpan {
  return {
    traceId: (i + 1).toString(16).padStart(32, '0'),
    spanId: (i + 1).toString(16).padStart(16, '0'),
    traceFlags: 1,
    name: `span-${i}`,
    kind: 'SERVER',
    startTimeUnixNano: T0 + BigInt(i) * MS,
    endTimeUnixNano: T0 + BigInt(i) * MS + 250_000n,
    attributes: { 'http.request.method': 'GET', 'span.index': i, ...extra },
    status: { code: 'UNSET' },
    pid,
    scope: 'otel-rust-agent/hyper',
  };
}

/** The counters every sink keeps, for exact comparisons. */
function core(st: ReturnType<SpanSink['stats']>) {
  return { submitted: st.submitted, exported: st.exported, dropped: st.dropped, failedExports: st.failedExports, queued: st.queued };
}

const sinks: SpanSink[] = [];
const receivers: OtlpReceiver[] = [];
after(async () => {
  await Promise.all(sinks.map((s) => s.shutdown()));
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(opts: Parameters<typeof startOtlpReceiver>[0]): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver(opts);
  receivers.push(r);
  return r;
}

function sink(cfg: Partial<ExportConfig> & Pick<ExportConfig, 'protocol'>): SpanSink {
  const s = createSpanExporter({ exporter: 'otlp', headers: {}, flushIntervalMs: 20, ...cfg });
  sinks.push(s);
  return s;
}

/** Captures the agent's stderr log lines while fn runs. */
async function captureStderr<T>(fn: (lines: string[]) => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as unknown as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]) => {
    const s = String(chunk);
    if (s.startsWith('otel-rust-agent ')) { lines.push(s.trimEnd()); return true; }
    return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
  };
  try {
    return { result: await fn(lines), lines };
  } finally {
    (process.stderr as unknown as { write: unknown }).write = orig;
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function byId(spans: ReceivedSpan[]): Map<string, ReceivedSpan> {
  return new Map(spans.map((s) => [s.spanId, s]));
}

for (const protocol of ['grpc', 'http/protobuf'] as const) {
  test(`${protocol}: spans reach a real OTLP receiver with exact fields`, async () => {
    const rcv = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc' });
    const s = sink({
      protocol,
      endpoint: protocol === 'grpc' ? rcv.grpcEndpoint : rcv.httpEndpoint, // http: base URL, /v1/traces appended
      headers: { 'x-tenant': 'team a', authorization: 'Bearer t0k' },
      agentVersion: '9.8.7',
    });
    for (const sp of threeSpanTrace()) s.submit(rec(sp), RES_A);
    await s.flush();
    const got = await rcv.waitForSpans(3, 5000);
    assert.equal(got.length, 3);
    const m = byId(got);

    const root = m.get(ROOT)!;
    assert.equal(root.traceId, TRACE);
    assert.equal(root.parentSpanId, REMOTE_PARENT);
    assert.equal(root.name, 'GET /users/{id}');
    assert.equal(root.kind, 2); // SERVER
    assert.equal(root.startTimeUnixNano, T0);
    assert.equal(root.endTimeUnixNano, T0 + 12_345_678n);
    assert.deepEqual(root.attributes, {
      'http.request.method': 'GET', 'url.path': '/users/42', 'url.query': 'page=2',
      'http.response.status_code': 200, 'http.route': '/users/{id}', 'network.protocol.version': '1.1',
    });
    assert.deepEqual(root.status, { code: 0, message: '' });
    assert.equal(root.flags, 0x301); // sampled | has-is-remote | is-remote
    assert.deepEqual(root.resource, RES_A.attributes);
    assert.deepEqual(root.scope, { name: 'otel-rust-agent/hyper', version: '9.8.7' });

    const c1 = m.get(CHILD1)!;
    assert.equal(c1.parentSpanId, ROOT);
    assert.equal(c1.kind, 1); // INTERNAL
    assert.equal(c1.flags, 0x101); // sampled | has-is-remote (local parent)
    assert.equal(c1.endTimeUnixNano - c1.startTimeUnixNano, 3n * MS);

    const c2 = m.get(CHILD2)!;
    assert.equal(c2.traceId, TRACE);
    assert.equal(c2.parentSpanId, ROOT);
    assert.equal(c2.kind, 3); // CLIENT
    assert.deepEqual(c2.status, { code: 2, message: 'upstream unavailable' }); // ERROR
    assert.equal(c2.attributes['error.type'], '503');
    assert.equal(c2.attributes['http.response.status_code'], 503);
    assert.deepEqual(c2.scope, { name: 'otel-rust-agent/reqwest', version: '9.8.7' });

    // All three in one request, one ResourceSpans (same process).
    assert.equal(new Set(got.map((x) => x.request)).size, 1);
    assert.equal(new Set(got.map((x) => x.resourceIndex)).size, 1);
    assert.equal(got[0].via, protocol === 'grpc' ? 'grpc' : 'http');

    const h = rcv.lastHeaders();
    assert.equal(h['x-tenant'], 'team a');
    assert.equal(h['authorization'], 'Bearer t0k');
    if (protocol !== 'grpc') assert.equal(h['content-type'], 'application/x-protobuf');

    assert.deepEqual(core(s.stats()), { submitted: 3, exported: 3, dropped: 0, failedExports: 0, queued: 0 });
  });

  test(`${protocol}: spans from two processes arrive under two ResourceSpans`, async () => {
    const rcv = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc' });
    const s = sink({ protocol, endpoint: protocol === 'grpc' ? rcv.grpcEndpoint : rcv.httpEndpoint });
    for (let i = 0; i < 6; i++) {
      // A fresh ProcessResource object each time with equal attributes must still group.
      const res = i % 2 === 0 ? { pid: RES_A.pid, attributes: { ...RES_A.attributes } } : RES_B;
      s.submit(rec(mkSpan(i, res.pid)), res);
    }
    await s.flush();
    const got = await rcv.waitForSpans(6, 5000);
    assert.equal(rcv.requestsCount, 1);
    assert.equal(new Set(got.map((x) => x.resourceIndex)).size, 2);
    const a = got.filter((x) => x.resource['service.name'] === 'checkout');
    const b = got.filter((x) => x.resource['service.name'] === 'pricing');
    assert.deepEqual(a.map((x) => x.name).sort(), ['span-0', 'span-2', 'span-4']);
    assert.deepEqual(b.map((x) => x.name).sort(), ['span-1', 'span-3', 'span-5']);
    assert.equal(new Set(a.map((x) => x.resourceIndex)).size, 1);
    assert.equal(new Set(b.map((x) => x.resourceIndex)).size, 1);
    assert.deepEqual(b[0].resource, { 'service.name': 'pricing', 'process.pid': 5151 });
  });

  test(`${protocol}: bounded queue drops exactly N - max while the collector fails, then retries deliver the rest`, async () => {
    const rcv = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc' });
    rcv.setFailing(true);
    const { result: s, lines } = await captureStderr(async (lines) => {
      const s = sink({
        protocol, endpoint: protocol === 'grpc' ? rcv.grpcEndpoint : rcv.httpEndpoint,
        maxQueueSpans: 10, batchSize: 4, retryInitialMs: 30, retryMaxMs: 120, timeoutMillis: 500,
      });
      for (let i = 0; i < 3; i++) s.submit(rec(mkSpan(i)), RES_A);
      await waitFor(() => s.stats().failedExports >= 1, 5000, 'a failed export');
      for (let i = 3; i < 25; i++) s.submit(rec(mkSpan(i)), RES_A);
      assert.deepEqual({ ...core(s.stats()), failedExports: 0 },
        { submitted: 25, exported: 0, dropped: 15, failedExports: 0, queued: 10 });
      assert.equal(s.stats().droppedQueueFull, 15);
      assert.equal(rcv.spans().length, 0);
      rcv.setFailing(false);
      const got = await rcv.waitForSpans(10, 10000);
      await s.flush();
      await waitFor(() => lines.some((l) => l.includes('reachable again')), 3000, 'the recovery log line');
      assert.deepEqual(got.map((x) => x.name), Array.from({ length: 10 }, (_, i) => `span-${i}`));
      return s;
    });
    const st = s.stats();
    assert.equal(st.exported, 10);
    assert.equal(st.dropped, 15);
    assert.equal(st.queued, 0);
    assert.ok(st.failedExports >= 1);
    // One "cannot export" warning, one "queue full" warning, one "reachable again" info line.
    const warnDown = lines.filter((l) => l.startsWith('otel-rust-agent warn: cannot export spans to'));
    const warnFull = lines.filter((l) => l.startsWith('otel-rust-agent warn: span queue full'));
    const infoBack = lines.filter((l) => l.startsWith('otel-rust-agent info: collector reachable again'));
    assert.equal(warnDown.length, 1, lines.join('\n'));
    assert.equal(warnFull.length, 1, lines.join('\n'));
    assert.equal(infoBack.length, 1, lines.join('\n'));
    assert.match(infoBack[0], /exported 10 queued spans$/);
    assert.ok(!lines.some((l) => /\n\s+at /.test(l)), 'no stack traces');
  });

  test(`${protocol}: collector down (connection refused) then back on the same port`, async () => {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const { lines } = await captureStderr(async () => {
      const s = sink({ protocol, endpoint, retryInitialMs: 50, retryMaxMs: 200, timeoutMillis: 500 });
      for (let i = 0; i < 7; i++) s.submit(rec(mkSpan(i)), RES_A);
      await waitFor(() => s.stats().failedExports >= 2, 8000, 'failed exports');
      assert.equal(s.stats().queued, 7);
      const rcv = await receiver(protocol === 'grpc'
        ? { grpc: true, http: false, grpcPort: port }
        : { grpc: false, http: true, httpPort: port });
      const got = await rcv.waitForSpans(7, 15000);
      assert.deepEqual(got.map((x) => x.name).sort(), Array.from({ length: 7 }, (_, i) => `span-${i}`).sort());
      await waitFor(() => s.stats().exported === 7, 2000, 'stats');
    });
    assert.equal(lines.filter((l) => l.includes('cannot export spans to')).length, 1, lines.join('\n'));
  });

  test(`${protocol}: shutdown() against a collector that never exists resolves within its deadline`, async () => {
    const port = await freePort();
    const { lines } = await captureStderr(async () => {
      const s = createSpanExporter({
        exporter: 'otlp', protocol, endpoint: `http://127.0.0.1:${port}`, headers: {},
        shutdownTimeoutMs: 1000, retryInitialMs: 50, timeoutMillis: 2000,
      });
      for (let i = 0; i < 5; i++) s.submit(rec(mkSpan(i)), RES_A);
      const t0 = Date.now();
      await s.shutdown(); // must not throw
      const took = Date.now() - t0;
      assert.ok(took >= 900 && took < 1300, `shutdown took ${took} ms`);
      assert.deepEqual({ ...core(s.stats()), failedExports: 0 },
        { submitted: 5, exported: 0, dropped: 5, failedExports: 0, queued: 0 });
      assert.equal(s.stats().lostAtShutdown, 5);
      s.submit(rec(mkSpan(9)), RES_A); // after shutdown: counted as dropped, no throw
      assert.equal(s.stats().dropped, 6);
      await s.shutdown(); // idempotent
    });
    assert.ok(lines.some((l) => /^otel-rust-agent warn: could not export 5 spans to .* within 1\.0 s at shutdown/.test(l)),
      lines.join('\n'));
  });
}

test('grpc: batches stay under the 4 MiB gRPC limit', async () => {
  const rcv = await receiver({ grpc: true, http: false });
  const s = sink({ protocol: 'grpc', endpoint: rcv.grpcEndpoint, batchSize: 2048, maxQueueSpans: 4096 });
  const big = 'x'.repeat(8 * 1024); // 2048 spans * 8 KiB = 16 MiB if sent in one request
  for (let i = 0; i < 2048; i++) s.submit(rec(mkSpan(i, 4242, { 'big.attr': big })), RES_A);
  await s.flush();
  const got = await rcv.waitForSpans(2048, 20000);
  assert.equal(got.length, 2048);
  assert.equal(rcv.failedRequests, 0);
  assert.ok(rcv.requestsCount >= 6, `requests: ${rcv.requestsCount}`);
  assert.equal(s.stats().dropped, 0);
  assert.equal(s.stats().failedExports, 0);
});

test('grpc: a batch rejected as too large is split, not dropped', async () => {
  const rcv = await receiver({ grpc: true, http: false, grpcMaxReceiveBytes: 64 * 1024 });
  const s = sink({ protocol: 'grpc', endpoint: rcv.grpcEndpoint, batchSize: 64 });
  const attr = 'y'.repeat(4000); // 64 spans * 4 KB > 64 KiB
  for (let i = 0; i < 64; i++) s.submit(rec(mkSpan(i, 4242, { 'big.attr': attr })), RES_A);
  await s.flush();
  const got = await rcv.waitForSpans(64, 10000);
  assert.equal(new Set(got.map((x) => x.name)).size, 64);
  const st = s.stats();
  assert.equal(st.exported, 64);
  assert.equal(st.dropped, 0);
  assert.ok(st.failedExports >= 1);
});

test('many spans go out in batches of batchSize', async () => {
  const rcv = await receiver({ grpc: false, http: true });
  const s = sink({ protocol: 'http/protobuf', endpoint: rcv.httpEndpoint, batchSize: 100, flushIntervalMs: 5000 });
  for (let i = 0; i < 1000; i++) s.submit(rec(mkSpan(i)), RES_A);
  const got = await rcv.waitForSpans(1000, 10000); // full batches do not wait for the timer
  assert.equal(rcv.requestsCount, 10);
  // Two requests may be in flight at once, so they may arrive in either order.
  const index = (x: ReceivedSpan) => Number(x.name.slice(5));
  assert.deepEqual(got.map(index).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  for (let r = 0; r < 10; r++) {
    const inRequest = got.filter((x) => x.request === r).map(index);
    assert.equal(inRequest.length, 100);
    assert.equal(Math.max(...inRequest) - Math.min(...inRequest), 99, 'each request holds 100 consecutive spans');
  }
});

test('headers Node or gRPC would refuse are dropped with a warning instead of failing every export', async () => {
  for (const protocol of ['grpc', 'http/protobuf'] as const) {
    const rcv = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc' });
    const { lines } = await captureStderr(async () => {
      const s = sink({
        protocol, endpoint: protocol === 'grpc' ? rcv.grpcEndpoint : rcv.httpEndpoint,
        headers: { 'x-bad': 'a\nb', 'x-good': '1' },
      });
      s.submit(rec(mkSpan(0)), RES_A);
      await s.flush();
      await rcv.waitForSpans(1, 5000);
      assert.equal(s.stats().exported, 1);
    });
    assert.equal(rcv.lastHeaders()['x-good'], '1');
    assert.equal(rcv.lastHeaders()['x-bad'], undefined);
    assert.deepEqual(lines, ['otel-rust-agent warn: OTLP header "x-bad" has an invalid name or value; ignored']);
  }
});

test('resolveOtlpUrl follows the OTLP exporter spec', () => {
  assert.equal(resolveOtlpUrl('grpc', undefined), 'http://localhost:4317');
  assert.equal(resolveOtlpUrl('http/protobuf', undefined), 'http://localhost:4318/v1/traces');
  assert.equal(resolveOtlpUrl('grpc', 'http://collector:4317'), 'http://collector:4317');
  assert.equal(resolveOtlpUrl('http/protobuf', 'http://collector:4318'), 'http://collector:4318/v1/traces');
  assert.equal(resolveOtlpUrl('http/protobuf', 'http://collector:4318/'), 'http://collector:4318/v1/traces');
  assert.equal(resolveOtlpUrl('http/protobuf', 'https://gw.example/otlp'), 'https://gw.example/otlp/v1/traces');
  // The signal-specific endpoint is used as is.
  assert.equal(resolveOtlpUrl('http/protobuf', 'http://a:4318', 'http://b:9999/custom'), 'http://b:9999/custom');
});

test('agentVersion() reads package.json', () => {
  assert.match(agentVersion(), /^\d+\.\d+\.\d+/);
  assert.equal(agentVersion(), require('../../../package.json').version);
});

const EXPECTED_TREE =
  'trace 4bf92f3577b34da6a3ce929d0e0e4736  checkout pid=4242  3 spans\n' +
  '  SERVER   GET /users/{id}  12.346 ms  GET /users/42?page=2 -> 200  route=/users/{id}  (remote parent 00f067aa0ba902b7)\n' +
  '    INTERNAL load_user  3.000 ms\n' +
  '    CLIENT   GET  1.500 ms  GET http://price:8080/api/price -> 503  error.type=503  ERROR: upstream unavailable\n';

class Collect { text = ''; isTTY = false; write(s: string) { this.text += s; return true; } }

test('console exporter prints a 3-span trace as a tree (flush)', async () => {
  const out = new Collect();
  const s = createSpanExporter({
    exporter: 'console', protocol: 'grpc', headers: {}, consoleOut: out, consoleQuietMs: 10_000,
  });
  const [root, c1, c2] = threeSpanTrace();
  for (const sp of [c2, c1, root]) s.submit(rec(sp), RES_A); // children end first
  assert.equal(out.text, '');
  await s.flush();
  assert.equal(out.text, EXPECTED_TREE);
  assert.deepEqual(core(s.stats()), { submitted: 3, exported: 3, dropped: 0, failedExports: 0, queued: 0 });
  await s.shutdown();
});

test('console tree prints by itself after the quiet period', async () => {
  const out = new Collect();
  const s = createSpanExporter({
    exporter: 'none', stdoutTree: true, protocol: 'grpc', headers: {}, consoleOut: out, consoleQuietMs: 600,
  });
  // Wide margins: timers run late on a loaded machine.
  const [root, c1, c2] = threeSpanTrace();
  s.submit(rec(c1), RES_A);
  s.submit(rec(root), RES_A);
  await new Promise((r) => setTimeout(r, 300));
  s.submit(rec(c2), RES_A);
  const c2At = Date.now();
  await new Promise((r) => setTimeout(r, 400));
  // The quiet period restarted with c2 (unless the machine stalled past it).
  if (Date.now() - c2At < 600) assert.equal(out.text, '');
  await waitFor(() => out.text !== '', 3000, 'the tree');
  assert.equal(out.text, EXPECTED_TREE);
  await s.shutdown();
});

test('console tree waits for a local parent that has not ended yet, up to maxHoldMs', async () => {
  const out = new Collect();
  const p = new ConsoleTreePrinter({ out, quietMs: 20, maxHoldMs: 200 });
  const [root, c1] = threeSpanTrace();
  p.add(c1, RES_A);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(out.text, ''); // held: its parent is local and still running
  p.add(root, RES_A);
  await waitFor(() => out.text !== '', 1000, 'the tree');
  assert.equal(out.text,
    'trace 4bf92f3577b34da6a3ce929d0e0e4736  checkout pid=4242  2 spans\n' +
    '  SERVER   GET /users/{id}  12.346 ms  GET /users/42?page=2 -> 200  route=/users/{id}  (remote parent 00f067aa0ba902b7)\n' +
    '    INTERNAL load_user  3.000 ms\n');

  // A parent that never comes: printed after maxHoldMs, marked.
  out.text = '';
  const orphan = { ...c1, traceId: 'ffffffffffffffffffffffffffffffff' };
  p.add(orphan);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(out.text, '');
  await waitFor(() => out.text !== '', 1000, 'the orphan');
  assert.equal(out.text,
    'trace ffffffffffffffffffffffffffffffff  pid=4242  1 span\n' +
    '  INTERNAL load_user  3.000 ms  (parent a1a2a3a4a5a6a7a8)\n');
});

test('console tree uses colors only on a TTY', () => {
  const tty = new Collect();
  tty.isTTY = true;
  const p = new ConsoleTreePrinter({ out: tty });
  for (const sp of threeSpanTrace()) p.add(sp, RES_A);
  p.flush();
  assert.match(tty.text, /\x1b\[1;31mERROR: upstream unavailable\x1b\[0m/);
  assert.equal(tty.text.replace(/\x1b\[[0-9;]*m/g, ''), EXPECTED_TREE);
});

test('formatDurationMs rounds to the microsecond', () => {
  assert.equal(formatDurationMs(0n, 12_345_678n), '12.346 ms');
  assert.equal(formatDurationMs(0n, 999n), '0.001 ms');
  assert.equal(formatDurationMs(10n, 5n), '0.000 ms');
  assert.equal(formatDurationMs(0n, 61_000_000_000n), '61000.000 ms');
});

// ---- what the official exporter gave users, kept: compression, TLS, partial success

for (const protocol of ['grpc', 'http/protobuf'] as const) {
  const endpointOf = (r: OtlpReceiver) => (protocol === 'grpc' ? r.grpcEndpoint : r.httpEndpoint);

  test(`${protocol}: gzip compression`, async () => {
    if (protocol === 'grpc') {
      // grpc-js servers hide grpc-encoding from handlers: look at the wire with a plain HTTP/2 server.
      const seen: { encoding?: string; compressedFlag?: number; spans?: number }[] = [];
      const h2 = http2.createServer();
      h2.on('stream', (stream, headers) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const body = Buffer.concat(chunks);
          const msg = body[0] === 1 ? zlib.gunzipSync(body.subarray(5)) : body.subarray(5);
          seen.push({ encoding: String(headers['grpc-encoding']), compressedFlag: body[0], spans: decodeExportRequest(msg, 'grpc', 0).length });
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(Buffer.from([0, 0, 0, 0, 0]));
        });
      });
      await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
      try {
        const s = sink({ protocol, endpoint: `http://127.0.0.1:${(h2.address() as net.AddressInfo).port}`, compression: 'gzip' });
        for (let i = 0; i < 50; i++) s.submit(rec(mkSpan(i)), RES_A);
        await s.flush();
        assert.equal(s.stats().exported, 50);
        assert.deepEqual(seen, [{ encoding: 'gzip', compressedFlag: 1, spans: 50 }]);
      } finally {
        h2.close();
      }
      return;
    }
    const rcv = await receiver({ grpc: false, http: true });
    const s = sink({ protocol, endpoint: endpointOf(rcv), compression: 'gzip' });
    for (let i = 0; i < 50; i++) s.submit(rec(mkSpan(i)), RES_A);
    await s.flush();
    const got = await rcv.waitForSpans(50, 5000);
    assert.equal(got.length, 50);
    assert.equal(rcv.lastHeaders()['content-encoding'], 'gzip');
  });

  test(`${protocol}: TLS with the CA from OTEL_EXPORTER_OTLP_CERTIFICATE, and mutual TLS with a client certificate`, async () => {
    const pki = testPki();
    const rcv = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc', tls: { key: pki.serverKey, cert: pki.serverCert } });
    assert.match(endpointOf(rcv), /^https:/);
    const s = sink({ protocol, endpoint: endpointOf(rcv), tls: { ca: pki.caPem } });
    s.submit(rec(mkSpan(1)), RES_A);
    await s.flush();
    assert.equal((await rcv.waitForSpans(1, 5000))[0].name, 'span-1');

    const mtls = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc', tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caPem, requireClientCert: true } });
    const withCert = sink({ protocol, endpoint: endpointOf(mtls), tls: { ca: pki.caPem, clientKey: pki.clientKey, clientCert: pki.clientCert } });
    withCert.submit(rec(mkSpan(2)), RES_A);
    await withCert.flush();
    assert.equal((await mtls.waitForSpans(1, 5000))[0].name, 'span-2');

    // Without the client certificate the handshake fails: retried, never delivered.
    const { lines } = await captureStderr(async () => {
      const noCert = sink({ protocol, endpoint: endpointOf(mtls), tls: { ca: pki.caPem }, retryInitialMs: 50, timeoutMillis: 1000 });
      noCert.submit(rec(mkSpan(3)), RES_A);
      await waitFor(() => noCert.stats().failedExports >= 1, 5000, 'a failed export');
      assert.equal(noCert.stats().exported, 0);
    });
    assert.ok(lines.some((l) => l.includes('cannot export spans to')), lines.join('\n'));
    assert.equal(mtls.spans().length, 1);
  });

  test(`${protocol}: spans a collector rejects in a partial success are counted as rejected`, async () => {
    const rcv = await receiver({ grpc: protocol === 'grpc', http: protocol !== 'grpc', partialReject: 2 });
    const { lines } = await captureStderr(async () => {
      const s = sink({ protocol, endpoint: endpointOf(rcv) });
      for (let i = 0; i < 5; i++) s.submit(rec(mkSpan(i)), RES_A);
      await s.flush();
      const st = s.stats();
      assert.deepEqual({ exported: st.exported, rejected: st.rejected, dropped: st.dropped, requests: st.requests }, { exported: 3, rejected: 2, dropped: 2, requests: 1 });
    });
    assert.ok(lines.some((l) => /rejected 2 of 5 spans \(spans rejected on purpose\)/.test(l)), lines.join('\n'));
  });
}

test('a request the collector refuses outright (HTTP 400) is dropped and counted, not retried', async () => {
  const { lines } = await captureStderr(async () => {
    const rcv = await receiver({ grpc: false, http: true });
    // The receiver answers 400 to a body it cannot decode; point the exporter at a path that is not OTLP.
    const s = sink({ protocol: 'http/protobuf', tracesEndpoint: `${rcv.httpEndpoint}/not-otlp` });
    s.submit(rec(mkSpan(0)), RES_A);
    await s.flush();
    const st = s.stats();
    assert.deepEqual({ rejected: st.rejected, exported: st.exported, failedExports: st.failedExports }, { rejected: 1, exported: 0, failedExports: 1 });
  });
  assert.ok(lines.some((l) => /rejected 1 spans \(HTTP 404/.test(l)), lines.join('\n'));
});

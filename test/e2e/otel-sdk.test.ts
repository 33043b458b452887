// End to end, under kernel lockdown (nothing is written into the traced
// process): a service instrumented by hand with the OpenTelemetry Rust SDK
// (apps/otel-sdk-service, opentelemetry_sdk from crates.io) exports its
// manual spans to the agent's OTLP relay; the agent traces the same process
// with its probes and exports everything to one real OTLP receiver. Each
// request must give exactly one trace:
//   GET /orders/{id}       SERVER (agent)
//   └── load_order         manual (the SDK thought it was a root)
//       ├── GET            CLIENT (agent, reqwest)
//       └── price_order    manual
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startOtlpReceiver, encodeExportRequest, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, startServiceCmd, serviceBinary, attachAgent, freshStats, waitForStats, runAgentSync, Service, RunningAgent, AgentStats } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let inventory: http.Server;
let invPort = 0;
/** The traceparent header of every request the inventory server got ('' when none). */
const seenTraceparents: string[] = [];
let relayPort = 0;
let relayGrpcPort = 0;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

before(async () => {
  inventory = http.createServer((req, res) => {
    seenTraceparents.push(String(req.headers.traceparent ?? ''));
    res.end('in stock');
  });
  await new Promise<void>((r) => inventory.listen(0, '127.0.0.1', r));
  invPort = (inventory.address() as AddressInfo).port;
  recv = await startOtlpReceiver({ grpc: false, http: true });
  relayPort = await freePort();
  relayGrpcPort = await freePort();
  svc = await startService(serviceBinary('otel-sdk-service'), {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${relayPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    INVENTORY_URL: `http://127.0.0.1:${invPort}/items`,
  });
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'orders',
    '--otlp-relay-address', String(relayPort), '--otlp-relay-grpc-address', String(relayGrpcPort)]);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => inventory?.close(r));
  assert.equal(code, 0, agent?.stderr.text);
});

const hits = (s: AgentStats, probe: string) => s.probes.find((p) => p.probe === probe)?.hits ?? 0;
type Relay = Record<string, number> & { export: Record<string, number> };
const relayOf = (s: AgentStats) => (s.export as unknown as { relay: Relay }).relay;

async function settle(pred: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500)); // nothing more comes
}

function traces(spans: ReceivedSpan[]): Map<string, ReceivedSpan[]> {
  const m = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    let l = m.get(s.traceId);
    if (!l) m.set(s.traceId, (l = []));
    l.push(s);
  }
  return m;
}

test('inspect shows the OpenTelemetry SDK crates and versions, and the should_sample probe', () => {
  const r = runAgentSync(['inspect', '--json', serviceBinary('otel-sdk-service')]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const sdk = Object.fromEntries(j.otelSdk.map((c: { crate: string; versions: string[] }) => [c.crate, c.versions]));
  assert.match(sdk.opentelemetry_sdk?.[0] ?? '', /^0\.\d+\.\d+$/);
  assert.match(sdk.opentelemetry?.[0] ?? '', /^0\.\d+\.\d+$/);
  assert.equal(sdk.opentelemetry_sdk[0], sdk.opentelemetry[0]);
  const m = j.modules.find((x: { name: string }) => x.name === 'otel-sdk');
  assert.equal(m.active, true, m.reason);
  assert.equal(m.probes[0].status, 'ready');
  const t = runAgentSync(['inspect', serviceBinary('otel-sdk-service')]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, new RegExp(`otel sdk  the application uses the OpenTelemetry Rust SDK`));
  assert.match(t.stdout, new RegExp(`opentelemetry_sdk ${sdk.opentelemetry_sdk[0].replace(/\./g, '\\.')} \\(from source paths\\)`));
  // A service without the SDK.
  const plain = JSON.parse(runAgentSync(['inspect', '--json', serviceBinary('axum08-server')]).stdout);
  assert.deepEqual(plain.otelSdk, []);
});

/** Sends N orders; asserts one trace each, SERVER -> load_order -> {CLIENT, price_order}, and the relay's and probe's counts. */
async function assertOneTracePerRequest(svc: Service, agent: RunningAgent, N: number): Promise<void> {
  recv.clear();
  const before = await freshStats(agent);
  for (let i = 1; i <= N; i++) {
    const res = await fetch(`http://127.0.0.1:${svc.port}/orders/${i}`);
    assert.equal(await res.text(), `order ${i}: 200\n`);
  }
  await settle(() => recv.spans().length >= 4 * N);
  const spans = recv.spans();
  // No span of the SDK's own export calls to the relay.
  assert.equal(spans.filter((s) => String(s.attributes['url.full'] ?? '').includes('/v1/traces')).length, 0);
  const ts = traces(spans);
  assert.equal(ts.size, N, JSON.stringify(spans.map((s) => [s.name, s.traceId.slice(0, 8)])));
  const seenIds = new Set<string>();
  for (const [traceId, t] of ts) {
    assert.equal(t.length, 4, JSON.stringify(t.map((s) => s.name)));
    const server = t.find((s) => s.kind === 2)!;
    const load = t.find((s) => s.name === 'load_order')!;
    const client = t.find((s) => s.kind === 3)!;
    const price = t.find((s) => s.name === 'price_order')!;
    assert.ok(server && load && client && price, JSON.stringify(t.map((s) => s.name)));
    const id = String(load.attributes['order.id']);
    seenIds.add(id);
    assert.equal(server.attributes['url.path'], `/orders/${id}`);
    assert.equal(server.scope.name.startsWith('otel-rust-agent/'), true);
    assert.equal(server.parentSpanId, '');
    assert.equal(load.parentSpanId, server.spanId);
    assert.equal(client.parentSpanId, load.spanId);
    assert.equal(price.parentSpanId, load.spanId);
    assert.equal(price.attributes['order.id'], id);
    assert.equal(client.attributes['url.full'], `http://127.0.0.1:${invPort}/items`);
    for (const s of t) assert.equal(s.traceId, traceId);
    // The manual spans keep what the SDK sent: its resource and scope.
    assert.equal(load.resource['service.name'], 'otel-sdk-service');
    assert.equal(load.scope.name, 'otel-sdk-service');
    assert.equal(price.resource['service.name'], 'otel-sdk-service');
    assert.equal(server.resource['service.name'], 'orders');
  }
  assert.deepEqual([...seenIds].sort(), Array.from({ length: N }, (_, i) => String(i + 1)));
  const after = await waitForStats(agent, (s) => relayOf(s).clientsReparented - relayOf(before).clientsReparented >= N);
  const d = (k: string) => relayOf(after)[k] - relayOf(before)[k];
  assert.equal(d('placedRoots'), N);
  assert.equal(d('placedDescendants'), N);
  assert.equal(d('unplaced'), 0);
  assert.equal(d('malformed'), 0);
  assert.equal(d('clientsHeld'), N);
  assert.equal(d('clientsReparented'), N);
  assert.equal(d('clientsUnresolved'), 0);
  // Both paths at once: the call probe read load_order as the current span
  // (CLIENT in the manual trace, parent load_order); the relay moved it with
  // the manual trace into the agent's (agentSpansMoved) and parented it to the
  // same span. The relay's result is what was exported (asserted above).
  assert.equal(d('agentSpansMoved'), N);
  const h = (k: string) => (after.spans['hyper-h1-client']?.[k] ?? 0) - (before.spans['hyper-h1-client']?.[k] ?? 0);
  assert.equal(h('manualParents'), N);
  assert.equal(h('manualUnconfirmed'), 0);
  assert.ok(d('ownExportCalls') >= 1);
  assert.equal(relayOf(after).export.exported - relayOf(before).export.exported, 2 * N);
  // Per request: the root's two calls (ParentBased, then its AlwaysOn delegate) and the child's one.
  assert.equal(hits(after, 'should_sample') - hits(before, 'should_sample'), 3 * N);
}

test('relay: each request gives exactly one trace SERVER -> load_order -> {CLIENT, price_order}, every parent link exact (opentelemetry_sdk 0.33)', async () => {
  await assertOneTracePerRequest(svc, agent, 5);
});

function craftedRequest(spans: { traceId: Buffer; spanId: Buffer; parent?: Buffer; name: string }[]): Buffer {
  const now = BigInt(Date.now()) * 1_000_000n;
  return encodeExportRequest({
    resource_spans: [{
      resource: { attributes: [{ key: 'service.name', value: { string_value: 'crafted' } }] },
      scope_spans: [{
        scope: { name: 'crafted-scope', version: '1' },
        spans: spans.map((s) => ({
          trace_id: s.traceId, span_id: s.spanId, ...(s.parent ? { parent_span_id: s.parent } : {}), name: s.name, kind: 1,
          start_time_unix_nano: String(now), end_time_unix_nano: String(now + 1000n),
        })),
      }],
    }],
  });
}

async function postRelay(body: Buffer, contentType = 'application/x-protobuf'): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${relayPort}/v1/traces`, { method: 'POST', headers: { "content-type": contentType }, body: new Uint8Array(body) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

test('relay: spans it cannot place (trace ids never seen being made) are forwarded unchanged and counted', async () => {
  recv.clear();
  const before = await freshStats(agent);
  const traceId = crypto.randomBytes(16), root = crypto.randomBytes(8), child = crypto.randomBytes(8);
  const r = await postRelay(craftedRequest([{ traceId, spanId: root, name: 'mystery-root' }, { traceId, spanId: child, parent: root, name: 'mystery-child' }]));
  assert.equal(r.status, 200);
  await settle(() => recv.spans().length >= 2);
  const got = recv.spans();
  assert.equal(got.length, 2);
  const gr = got.find((s) => s.name === 'mystery-root')!;
  const gc = got.find((s) => s.name === 'mystery-child')!;
  assert.equal(gr.traceId, traceId.toString('hex'));
  assert.equal(gr.spanId, root.toString('hex'));
  assert.equal(gr.parentSpanId, '');
  assert.equal(gc.traceId, traceId.toString('hex'));
  assert.equal(gc.parentSpanId, root.toString('hex'));
  assert.equal(gr.resource['service.name'], 'crafted');
  assert.deepEqual(gr.scope, { name: 'crafted-scope', version: '1' });
  const after = await waitForStats(agent, (s) => relayOf(s).unplaced - relayOf(before).unplaced >= 2);
  assert.equal(relayOf(after).unplaced - relayOf(before).unplaced, 2);
  assert.equal(relayOf(after).placedRoots - relayOf(before).placedRoots, 0);
});

test('relay: a malformed request is rejected (HTTP 400 / gRPC INVALID_ARGUMENT, JSON 415) and nothing else is lost', async () => {
  recv.clear();
  const before = await freshStats(agent);
  // A truncated length, a span_id of 3 bytes, a group wire type.
  const truncated = Buffer.from([0x0a, 0x20, 0x12, 0x01]);
  const badId = craftedRequest([{ traceId: crypto.randomBytes(16), spanId: Buffer.from([1, 2, 3]), name: 'bad' }]);
  for (const body of [truncated, badId, Buffer.from([0x0b])]) {
    const r = await postRelay(body);
    assert.equal(r.status, 400);
    assert.match(r.body.toString('latin1'), /malformed ExportTraceServiceRequest/);
  }
  assert.equal((await postRelay(Buffer.from('{}'), 'application/json')).status, 415);
  // gRPC: the same malformed body, then a good one.
  const client = new grpc.Client(`127.0.0.1:${relayGrpcPort}`, grpc.credentials.createInsecure());
  const call = (body: Buffer) => new Promise<grpc.ServiceError | null>((resolve) => client.makeUnaryRequest(
    '/opentelemetry.proto.collector.trace.v1.TraceService/Export', (b: Buffer) => b, (b: Buffer) => b, body, (err) => resolve(err)));
  const gerr = await call(truncated);
  assert.equal(gerr?.code, grpc.status.INVALID_ARGUMENT);
  const traceId = crypto.randomBytes(16);
  assert.equal(await call(craftedRequest([{ traceId, spanId: crypto.randomBytes(8), name: 'after-bad-grpc' }])), null);
  client.close();
  // And a good one over HTTP right after the bad ones: forwarded.
  assert.equal((await postRelay(craftedRequest([{ traceId, spanId: crypto.randomBytes(8), name: 'after-bad-http' }]))).status, 200);
  await settle(() => recv.spans().length >= 2);
  assert.deepEqual(recv.spans().map((s) => s.name).sort(), ['after-bad-grpc', 'after-bad-http']);
  const after = await waitForStats(agent, (s) => relayOf(s).malformed - relayOf(before).malformed >= 4);
  assert.equal(relayOf(after).malformed - relayOf(before).malformed, 4);
  // The service kept working and its spans kept their trace.
  const res = await fetch(`http://127.0.0.1:${svc.port}/orders/77`);
  assert.equal(await res.text(), 'order 77: 200\n');
  await settle(() => recv.spans().length >= 6);
  const t = [...traces(recv.spans()).values()].find((l) => l.some((s) => s.name === 'load_order'))!;
  assert.equal(t.length, 4);
});

test('relay: with the downstream collector down, relayed spans are queued, retried and delivered (counted)', async () => {
  recv.clear();
  const before = await freshStats(agent);
  recv.setFailing(true, 3000);
  const traceId = crypto.randomBytes(16);
  assert.equal((await postRelay(craftedRequest([{ traceId, spanId: crypto.randomBytes(8), name: 'while-down' }]))).status, 200);
  await settle(() => recv.spans().length >= 1, 30_000);
  assert.deepEqual(recv.spans().map((s) => s.name), ['while-down']);
  const after = await waitForStats(agent, (s) => relayOf(s).export.exported - relayOf(before).export.exported >= 1);
  assert.ok(relayOf(after).export.failedExports - relayOf(before).export.failedExports >= 1);
  assert.equal(relayOf(after).export.dropped - relayOf(before).export.dropped, 0);
});

test('an older SDK release (opentelemetry_sdk 0.28): inspect, and the same single trace per request through the relay', async () => {
  const bin = serviceBinary('otel-sdk028-service');
  const j = JSON.parse(runAgentSync(['inspect', '--json', bin]).stdout);
  const sdk = Object.fromEntries(j.otelSdk.map((c: { crate: string; versions: string[] }) => [c.crate, c.versions]));
  assert.deepEqual(sdk.opentelemetry_sdk, ['0.28.0']);
  assert.deepEqual(sdk.opentelemetry, ['0.28.0']);
  assert.equal(j.modules.find((x: { name: string }) => x.name === 'otel-sdk').probes[0].status, 'ready');
  const port = await freePort();
  const svc2 = await startService(bin, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BSP_SCHEDULE_DELAY: '200',
    INVENTORY_URL: `http://127.0.0.1:${invPort}/items`,
  });
  let agent2: RunningAgent | undefined;
  try {
    agent2 = await attachAgent(['--pid', String(svc2.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'orders',
      '--otlp-relay-address', String(port)]);
    await assertOneTracePerRequest(svc2, agent2, 3);
  } finally {
    const code = agent2 ? await agent2.stop() : 0;
    await svc2.stop();
    assert.equal(code, 0, agent2?.stderr.text);
  }
});

// ---------------------------------------------------------------- read-only, no relay
//
// The application exports its manual spans elsewhere (its own receiver, not
// the agent). The agent reads the SDK's current span at the reqwest call
// (src/libs/otel-sdk/current.h, from hyper-h1-client's call probe): its
// CLIENT span is in the manual span's trace, with the manual span as parent.
// The agent's SERVER span stays a trace of its own (nothing can move the
// application's spans into it without the relay):
//   agent:  GET /orders/{id} SERVER (trace X)
//   app:    load_order (trace T) ─ price_order
//   agent:  └─ GET CLIENT (trace T, parent load_order)
// A call with no manual span around it (GET /stock) keeps its SERVER parent.

async function assertReadOnly(bin: string, version: string, N: number): Promise<void> {
  const j = JSON.parse(runAgentSync(['inspect', '--json', bin]).stdout);
  const note = j.context.factNotes.find((n: { module: string }) => n.module === 'otel-sdk');
  assert.equal(note.ok, true, note.text);
  assert.match(note.text, new RegExp(`database: opentelemetry ${version.replace(/\./g, '\\.')}, rustc`));
  assert.equal(typeof j.context.facts.otelCx.spanPtrOff, 'number');
  const appRecv = await startOtlpReceiver({ grpc: false, http: true });
  const agentRecv = await startOtlpReceiver({ grpc: false, http: true });
  // In a cgroup of its own, so that the agent's outgoing propagation (which
  // leaves the root cgroup alone) covers it: what goes on the wire is asserted too.
  const mount = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  assert.ok(mount, 'a cgroup v2 hierarchy is mounted');
  const cgroup = path.join(mount, `otel-rust-agent-otelsdk-${process.pid}-${version}`);
  fs.mkdirSync(cgroup, { recursive: true });
  const svc2 = await startServiceCmd(['sh', '-c', 'echo $$ > "$1/cgroup.procs" && exec "$2"', 'sh', cgroup, bin], {
    OTEL_EXPORTER_OTLP_ENDPOINT: appRecv.httpEndpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BSP_SCHEDULE_DELAY: '200',
    INVENTORY_URL: `http://127.0.0.1:${invPort}/items`,
  });
  let agent2: RunningAgent | undefined;
  try {
    agent2 = await attachAgent(['--pid', String(svc2.pid), '--protocol', 'http/protobuf', '--endpoint', agentRecv.httpEndpoint, '--service-name', 'orders']);
    await waitForStats(agent2, (s) => (s as unknown as { propagation?: { cgroups: string[] } }).propagation?.cgroups.length === 1);
    const before = await freshStats(agent2);
    seenTraceparents.length = 0;
    for (let i = 1; i <= N; i++) {
      const res = await fetch(`http://127.0.0.1:${svc2.port}/orders/${i}`);
      assert.equal(await res.text(), `order ${i}: 200\n`);
      const st = await fetch(`http://127.0.0.1:${svc2.port}/stock`);
      assert.equal(await st.text(), 'stock: 200\n');
    }
    const own = (s: ReceivedSpan) => String(s.attributes['url.full'] ?? '').includes('/v1/traces');
    await settle(() => appRecv.spans().length >= 2 * N && agentRecv.spans().filter((s) => !own(s)).length >= 4 * N);
    const app = appRecv.spans();
    const mine = agentRecv.spans().filter((s) => !own(s));
    assert.equal(app.length, 2 * N, JSON.stringify(app.map((s) => s.name)));
    assert.equal(mine.length, 4 * N, JSON.stringify(mine.map((s) => [s.name, s.kind, s.attributes['url.path'] ?? s.attributes['url.full']])));
    const loads = app.filter((s) => s.name === 'load_order');
    assert.equal(loads.length, N);
    const clients = mine.filter((s) => s.kind === 3);
    const servers = mine.filter((s) => s.kind === 2);
    assert.equal(clients.length, 2 * N);
    assert.equal(servers.length, 2 * N);
    for (const load of loads) {
      const id = String(load.attributes['order.id']);
      assert.equal(load.parentSpanId, '');
      const price = app.find((s) => s.name === 'price_order' && s.attributes['order.id'] === id)!;
      assert.equal(price.parentSpanId, load.spanId);
      // Exactly one agent span in the manual trace: the CLIENT call made inside load_order.
      const inTrace = mine.filter((s) => s.traceId === load.traceId);
      assert.equal(inTrace.length, 1, `order ${id}: ${JSON.stringify(inTrace.map((s) => s.name))}`);
      const client = inTrace[0];
      assert.equal(client.kind, 3);
      assert.equal(client.parentSpanId, load.spanId);
      assert.equal(client.attributes['url.full'], `http://127.0.0.1:${invPort}/items`);
      // What went on the wire says the same (the agent's propagation): the manual trace, this CLIENT span.
      assert.equal(seenTraceparents.filter((t) => t === `00-${load.traceId}-${client.spanId}-01`).length, 1, JSON.stringify(seenTraceparents));
      // (No interval check: the agent's times come from CLOCK_MONOTONIC mapped to
      // wall time, the SDK's from SystemTime; they may differ by a little.)
      // The SERVER span of that request: its own trace, a root.
      const server = servers.find((s) => s.attributes['url.path'] === `/orders/${id}`)!;
      assert.equal(server.parentSpanId, '');
      assert.notEqual(server.traceId, load.traceId);
    }
    // Calls with no manual span around them: children of their SERVER span, as always.
    const stockServers = servers.filter((s) => s.attributes['url.path'] === '/stock');
    assert.equal(stockServers.length, N);
    for (const server of stockServers) {
      const kids = clients.filter((c) => c.parentSpanId === server.spanId);
      assert.equal(kids.length, 1);
      assert.equal(kids[0].traceId, server.traceId);
      assert.equal(kids[0].attributes['url.full'], `http://127.0.0.1:${invPort}/items`);
      assert.equal(seenTraceparents.filter((t) => t === `00-${server.traceId}-${kids[0].spanId}-01`).length, 1);
    }
    assert.equal(seenTraceparents.length, 2 * N);
    const after = await waitForStats(agent2, (s) => (s.spans['hyper-h1-client']?.manualParents ?? 0) - (before.spans['hyper-h1-client']?.manualParents ?? 0) >= N);
    const d = (k: string) => (after.spans['hyper-h1-client']?.[k] ?? 0) - (before.spans['hyper-h1-client']?.[k] ?? 0);
    assert.equal(d('manualParents'), N);
    assert.equal(d('manualUnconfirmed'), 0);
    assert.equal(d('manualBusy'), 0);
    assert.equal(d('manualBadRead'), 0);
    // The reqwest call probe did it, no probe of its own: one hit per call of the
    // handlers, plus one per export call of the SDK's blocking exporter (its
    // reqwest::blocking call reaches execute_request on reqwest's runtime thread).
    const calls = (s: AgentStats) => hits(s, 'reqwest_execute') - hits(s, 'reqwest_blocking_execute');
    assert.equal(calls(after) - calls(before), 2 * N);
    assert.equal(hits(after, 'should_sample') - hits(before, 'should_sample'), 3 * N);
  } finally {
    const code = agent2 ? await agent2.stop() : 0;
    await svc2.stop();
    await appRecv.close();
    await agentRecv.close();
    try { fs.rmdirSync(cgroup); } catch { /* still emptying */ }
    assert.equal(code, 0, agent2?.stderr.text);
  }
}

test('read-only, app exporting elsewhere (opentelemetry 0.33.1): the CLIENT span is in load_order\'s trace with load_order as parent; calls outside manual spans unchanged', async () => {
  await assertReadOnly(serviceBinary('otel-sdk-service'), '0.33.1', 5);
});

test('read-only, app exporting elsewhere (opentelemetry 0.28.0): the same', async () => {
  await assertReadOnly(serviceBinary('otel-sdk028-service'), '0.28.0', 5);
});

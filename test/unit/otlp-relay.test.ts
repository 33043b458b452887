// The OTLP relay's request rewriting and placement, without a kernel: the
// requests are real OTLP protobuf (encoded and decoded with protobufjs from
// the official field numbers), the export queues are the agent's own
// OtlpSpanSink, with a transport that keeps what it was given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { encodeExportRequest, decodeExportRequest } from '../helpers/otlp-receiver';
import { rewriteRequest, MalformedRequest } from '../../src/export/relay/otlp-traces';
import { OtlpRelay } from '../../src/export/relay/relay';
import { OtlpSpanSink } from '../../src/export/exporter';
import type { Transport } from '../../src/export/otlp/transport';
import { SdkSightings } from '../../src/spans/sdk-sightings';
import { acquireRecord, SpanKind } from '../../src/spans/record';
import { userMemoryWrites } from '../../src/libs/otel-sdk/detect';

const NOW = BigInt(Date.now()) * 1_000_000n;

function request(spans: { traceId: Buffer; spanId: Buffer; parent?: Buffer; name: string; start?: bigint; end?: bigint }[]): Buffer {
  return encodeExportRequest({
    resource_spans: [{
      resource: { attributes: [{ key: 'service.name', value: { string_value: 'app' } }] },
      scope_spans: [{
        scope: { name: 'app-scope', version: '2' },
        spans: spans.map((s) => ({
          trace_id: s.traceId, span_id: s.spanId, ...(s.parent ? { parent_span_id: s.parent } : {}), name: s.name, kind: 1,
          start_time_unix_nano: String(s.start ?? NOW), end_time_unix_nano: String(s.end ?? NOW + 1000n),
          attributes: [{ key: 'k', value: { int_value: 7 } }],
        })),
      }],
    }],
  });
}

test('rewriteRequest: replaces the trace id and sets a root\'s parent, keeps every other byte; unchanged requests are returned as is', () => {
  const t = crypto.randomBytes(16), a = crypto.randomBytes(8), b = crypto.randomBytes(8);
  const req = request([{ traceId: t, spanId: a, name: 'root' }, { traceId: t, spanId: b, parent: a, name: 'child' }]);
  const same = rewriteRequest(req, () => undefined);
  assert.equal(same.body, req);
  assert.equal(same.spans, 2);
  const x = crypto.randomBytes(16), p = crypto.randomBytes(8);
  const out = rewriteRequest(req, (s) => (s.parentSpanId ? { traceId: x } : { traceId: x, parentSpanId: p }));
  const spans = decodeExportRequest(out.body, 'http', 0);
  assert.equal(spans.length, 2);
  const [root, child] = spans;
  assert.equal(root.traceId, x.toString('hex'));
  assert.equal(root.parentSpanId, p.toString('hex'));
  assert.equal(root.spanId, a.toString('hex'));
  assert.equal(child.traceId, x.toString('hex'));
  assert.equal(child.parentSpanId, a.toString('hex'));
  for (const s of spans) {
    assert.deepEqual(s.attributes, { k: 7 });
    assert.deepEqual(s.scope, { name: 'app-scope', version: '2' });
    assert.deepEqual(s.resource, { 'service.name': 'app' });
  }
});

test('rewriteRequest: malformed input throws MalformedRequest', () => {
  const bad = [
    Buffer.from([0x0a, 0x20, 0x12]), // length past the end
    Buffer.from([0x0b]), // group
    Buffer.from([0x02, 0x00]), // field 0
    Buffer.from([0x0a, 0x02, 0x12, 0x05]), // scope_spans truncated inside
    request([{ traceId: crypto.randomBytes(15), spanId: crypto.randomBytes(8), name: 'short trace id' }]),
    request([{ traceId: crypto.randomBytes(16), spanId: crypto.randomBytes(8), parent: crypto.randomBytes(4), name: 'short parent' }]),
  ];
  for (const b of bad) assert.throws(() => rewriteRequest(b, () => undefined), MalformedRequest, b.toString('hex'));
  assert.equal(rewriteRequest(Buffer.alloc(0), () => undefined).spans, 0);
});

class KeepTransport implements Transport {
  bodies: Buffer[] = [];
  async send(body: Buffer) { this.bodies.push(body); return { kind: 'ok' as const, rejected: 0 }; }
  close(): void { /* nothing */ }
}

function sink(t: KeepTransport): OtlpSpanSink {
  return new OtlpSpanSink({ exporter: 'otlp', protocol: 'http/protobuf', headers: {}, flushIntervalMs: 1 }, () => t);
}

test('OtlpRelay: places a root seen under an agent span and its descendants, holds the agent CLIENT span until its manual parent arrives', async () => {
  const sightings = new SdkSightings();
  const agentT = new KeepTransport(), relayT = new KeepTransport();
  const relay = new OtlpRelay(sink(agentT), sink(relayT), { agentVersion: 't', holdMs: 60_000 }, sightings);
  const agentTrace = crypto.randomBytes(16).toString('hex'), agentSpan = crypto.randomBytes(8).toString('hex');
  const manualTrace = crypto.randomBytes(16), loadId = crypto.randomBytes(8), priceId = crypto.randomBytes(8);
  sightings.saw(manualTrace.toString('hex'), { pid: 42, tid: 42, task: 7, startUnixNano: NOW, agentTraceId: agentTrace, agentSpanId: agentSpan });
  assert.equal(sightings.again(manualTrace.toString('hex')), true);

  // The agent's CLIENT span, made inside load_order: held.
  const rec = acquireRecord();
  rec.pid = 42;
  rec.kind = SpanKind.CLIENT;
  rec.name = 'GET';
  rec.scope = 'otel-rust-agent/hyper-client';
  rec.setTraceIdHex(agentTrace);
  rec.newSpanId();
  rec.setParentSpanIdHex(agentSpan);
  rec.startUnixNano = NOW + 100n;
  rec.endUnixNano = NOW + 200n;
  const clientId = rec.spanIdHex();
  relay.submit(rec, { pid: 42, attributes: { 'service.name': 'svc' } });
  assert.equal(relay.counts.clientsHeld, 1);
  assert.equal(relay.stats().queued, 1);

  // price_order (ends first), then load_order.
  assert.equal(relay.receive(request([{ traceId: manualTrace, spanId: priceId, parent: loadId, name: 'price_order', start: NOW + 300n, end: NOW + 400n }])).kind, 'ok');
  assert.equal(relay.counts.clientsHeld - relay.counts.clientsReparented, 1);
  assert.equal(relay.receive(request([{ traceId: manualTrace, spanId: loadId, name: 'load_order', start: NOW + 50n, end: NOW + 500n }])).kind, 'ok');
  assert.equal(relay.counts.clientsReparented, 1);
  assert.equal(relay.counts.placedRoots, 1);
  assert.equal(relay.counts.placedDescendants, 1);
  // Unknown trace: unchanged.
  const stranger = crypto.randomBytes(16);
  assert.equal(relay.receive(request([{ traceId: stranger, spanId: crypto.randomBytes(8), name: 'stranger' }])).kind, 'ok');
  assert.equal(relay.counts.unplaced, 1);
  assert.equal(relay.receive(Buffer.from([0x0b])).kind, 'malformed');
  // A downstream server span (agent) that received the app's own traceparent: moved into the agent trace.
  const down = acquireRecord();
  down.pid = 43;
  down.kind = SpanKind.SERVER;
  down.name = 'GET /stock';
  down.scope = 'otel-rust-agent/hyper';
  down.setTraceIdHex(manualTrace.toString('hex'));
  down.newSpanId();
  down.setParentSpanIdHex(loadId.toString('hex'));
  down.startUnixNano = NOW + 150n;
  down.endUnixNano = NOW + 180n;
  relay.submit(down, { pid: 43, attributes: { 'service.name': 'stock' } });
  assert.equal(relay.counts.agentSpansMoved, 1);
  await relay.flush();
  await relay.shutdown();

  const relayed = relayT.bodies.flatMap((b, i) => decodeExportRequest(b, 'http', i));
  const price = relayed.find((s) => s.name === 'price_order')!;
  const load = relayed.find((s) => s.name === 'load_order')!;
  assert.equal(load.traceId, agentTrace);
  assert.equal(load.parentSpanId, agentSpan);
  assert.equal(price.traceId, agentTrace);
  assert.equal(price.parentSpanId, loadId.toString('hex'));
  assert.equal(relayed.find((s) => s.name === 'stranger')!.traceId, stranger.toString('hex'));
  const agentSpans = agentT.bodies.flatMap((b, i) => decodeExportRequest(b, 'http', i)).filter((s) => s.kind === 3);
  const moved = agentT.bodies.flatMap((b, i) => decodeExportRequest(b, 'http', i)).filter((s) => s.kind === 2);
  assert.equal(moved.length, 1);
  assert.equal(moved[0].traceId, agentTrace);
  assert.equal(moved[0].parentSpanId, loadId.toString('hex'));
  assert.equal(agentSpans.length, 1);
  assert.equal(agentSpans[0].spanId, clientId);
  assert.equal(agentSpans[0].traceId, agentTrace);
  assert.equal(agentSpans[0].parentSpanId, loadId.toString('hex'));
  assert.deepEqual(agentSpans[0].resource, { 'service.name': 'svc' });
});

test('OtlpRelay: the agent\'s ring is drained before spans are placed (the SDK can export before the next periodic drain)', async () => {
  const sightings = new SdkSightings();
  const agentT = new KeepTransport(), relayT = new KeepTransport();
  const relay = new OtlpRelay(sink(agentT), sink(relayT), { agentVersion: 't', holdMs: 60_000 }, sightings);
  const agentTrace = crypto.randomBytes(16).toString('hex'), agentSpan = crypto.randomBytes(8).toString('hex');
  const manualTrace = crypto.randomBytes(16), rootId = crypto.randomBytes(8);
  // The sample event of the manual root is still in the ring: filed only when the relay drains.
  let drains = 0;
  relay.useEventDrain(() => {
    drains++;
    if (drains === 1) sightings.saw(manualTrace.toString('hex'), { pid: 42, tid: 42, task: 7, startUnixNano: NOW, agentTraceId: agentTrace, agentSpanId: agentSpan });
  });
  assert.equal(relay.receive(request([{ traceId: manualTrace, spanId: rootId, name: 'load_order' }])).kind, 'ok');
  assert.equal(drains, 1);
  assert.equal(relay.counts.placedRoots, 1);
  assert.equal(relay.counts.unplaced, 0);
  // A malformed request is refused before any drain.
  assert.equal(relay.receive(Buffer.from([0x0b])).kind, 'malformed');
  assert.equal(drains, 1);
  await relay.flush();
  await relay.shutdown();
  const root = relayT.bodies.flatMap((b, i) => decodeExportRequest(b, 'http', i)).find((s) => s.name === 'load_order')!;
  assert.equal(root.traceId, agentTrace);
  assert.equal(root.parentSpanId, agentSpan);
});

test('userMemoryWrites: the lockdown LSM\'s active mode decides; unreadable is unknown', () => {
  assert.deepEqual(userMemoryWrites(() => 'none [integrity] confidentiality\n'), { allowed: false, detail: 'kernel lockdown=integrity refuses bpf_probe_write_user' });
  assert.deepEqual(userMemoryWrites(() => '[none] integrity confidentiality\n'), { allowed: true, detail: 'kernel lockdown is off' });
  assert.equal(userMemoryWrites(() => { throw new Error('ENOENT'); }).allowed, null);
});

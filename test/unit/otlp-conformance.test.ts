// Conformance of our OTLP encoder (src/export/otlp/encode.ts) with the
// official one: the same spans are encoded by SpanBatchEncoder and by the
// OpenTelemetry JS exporter's serializer (@opentelemetry/otlp-transformer,
// a dev dependency kept for this), both requests are decoded with the
// official opentelemetry-proto definitions (fetched by scripts/setup.sh from
// the opentelemetry-proto release on Maven Central), and every field must be
// equal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { SpanBatchEncoder, splitRequest, countSpans } from '../../src/export/otlp/encode';
import { recordFromAgentSpan, attrKey, SpanRecord } from '../../src/spans/record';
import type { AgentSpan, ProcessResource } from '../../src/spans/types';
import { repoRoot } from '../../src/util/paths';

const PROTO_VERSION = '1.9.0-alpha';

function officialRequestType(): protobuf.Type {
  const dir = path.join(repoRoot(), 'build', 'otlp-proto', PROTO_VERSION);
  const file = path.join(dir, 'opentelemetry', 'proto', 'collector', 'trace', 'v1', 'trace_service.proto');
  assert.ok(fs.existsSync(file), `${file} (run scripts/setup.sh)`);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
  root.loadSync(file, { keepCase: true });
  return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
}

function decode(T: protobuf.Type, body: Uint8Array): unknown {
  const msg = T.decode(body);
  // Unknown fields would mean one side wrote something the official schema does not have.
  const walk = (m: unknown): void => {
    if (!m || typeof m !== 'object') return;
    assert.equal((m as { $unknowns?: unknown[] }).$unknowns, undefined, 'no unknown fields');
    for (const v of Object.values(m as object)) (Array.isArray(v) ? v : [v]).forEach(walk);
  };
  walk(msg);
  return T.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: true, arrays: true, oneofs: true });
}

const T0 = 1_764_620_000_123_456_789n;
const RES_A: ProcessResource = { pid: 4242, attributes: { 'service.name': 'checkout', 'process.pid': 4242, 'process.runtime.version': '1.95.0', 'host.arch.is64': true } };
const RES_B: ProcessResource = { pid: 5151, attributes: { 'service.name': 'pricing', 'process.pid': 5151, ratio: 0.25 } };

function spans(): [AgentSpan, ProcessResource][] {
  const base = { traceFlags: 1, startTimeUnixNano: T0, endTimeUnixNano: T0 + 1_234_567n, pid: 4242 };
  return [
    [{ ...base, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: 'a1a2a3a4a5a6a7a8', parentSpanId: '00f067aa0ba902b7', parentIsRemote: true,
      traceState: 'vendor=abc,other=1', name: 'GET /users/{id}', kind: 'SERVER',
      attributes: { 'http.request.method': 'GET', 'url.path': '/users/42', 'http.response.status_code': 200, 'server.port': 8080, 'http.route': '/users/{id}' },
      status: { code: 'UNSET' }, scope: 'otel-rust-agent/hyper' }, RES_A],
    [{ ...base, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: 'b1b2b3b4b5b6b7b8', parentSpanId: 'a1a2a3a4a5a6a7a8', name: 'GET', kind: 'CLIENT',
      attributes: { 'url.full': 'http://price/ünïcødé?q=€', 'http.response.status_code': 503, 'error.type': '503', negative: -42, big: 2 ** 40, flag: false, pi: 3.25 },
      status: { code: 'ERROR', message: 'upstream unavailable' }, scope: 'otel-rust-agent/reqwest' }, RES_A],
    [{ ...base, traceId: '0102030405060708090a0b0c0d0e0f10', spanId: 'ffffffffffffffff', traceFlags: 0x81, name: 'shop.v1.Catalog/GetProduct', kind: 'SERVER',
      attributes: { 'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.response.status_code': 'NOT_FOUND' },
      status: { code: 'OK' }, scope: 'otel-rust-agent/tonic', pid: 5151 }, RES_B],
    [{ ...base, traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0000000000000001', name: 'x'.repeat(300), kind: 'INTERNAL',
      attributes: { long: 'y'.repeat(20_000) }, status: { code: 'UNSET' }, scope: 'otel-rust-agent/tonic', pid: 5151 }, RES_B],
  ];
}

/** The spans as the official exporter wants them (ReadableSpan-shaped objects). */
function readableSpans(list: [AgentSpan, ProcessResource][]): unknown[] {
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const { TraceState } = require('@opentelemetry/core');
  const resources = new Map<ProcessResource, unknown>();
  const scopes = new Map<string, unknown>();
  const KIND: Record<string, number> = { INTERNAL: 0, SERVER: 1, CLIENT: 2, PRODUCER: 3, CONSUMER: 4 };
  const STATUS: Record<string, number> = { UNSET: 0, OK: 1, ERROR: 2 };
  const hr = (ns: bigint): [number, number] => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
  return list.map(([s, res]) => {
    if (!resources.has(res)) resources.set(res, resourceFromAttributes({ ...res.attributes }));
    if (!scopes.has(s.scope)) scopes.set(s.scope, { name: s.scope, version: '1.2.3' });
    const ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: s.traceFlags, traceState: s.traceState ? new TraceState(s.traceState) : undefined };
    return {
      name: s.name, kind: KIND[s.kind], spanContext: () => ctx,
      parentSpanContext: s.parentSpanId ? { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: s.traceFlags, isRemote: s.parentIsRemote === true } : undefined,
      startTime: hr(s.startTimeUnixNano), endTime: hr(s.endTimeUnixNano), duration: hr(s.endTimeUnixNano - s.startTimeUnixNano), ended: true,
      status: s.status.message ? { code: STATUS[s.status.code], message: s.status.message } : { code: STATUS[s.status.code] },
      attributes: s.attributes, links: [], events: [], resource: resources.get(res), instrumentationScope: scopes.get(s.scope),
      droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
    };
  });
}

function ours(list: [AgentSpan, ProcessResource][]): Buffer {
  const enc = new SpanBatchEncoder('1.2.3');
  for (const [s, res] of list) enc.add(recordFromAgentSpan(s), res);
  return Buffer.from(enc.finish());
}

test('our encoder and the official OTLP serializer give the same request, field by field', () => {
  const T = officialRequestType();
  const { ProtobufTraceSerializer } = require('@opentelemetry/otlp-transformer');
  const list = spans();
  const official = ProtobufTraceSerializer.serializeRequest(readableSpans(list)) as Uint8Array;
  const mine = ours(list);
  const a = decode(T, mine);
  const b = decode(T, official);
  assert.deepEqual(a, b);
  // And it really holds what we meant (not two equally wrong encodings).
  const rs = (a as { resource_spans: { scope_spans: { spans: { name: string; flags: number; kind: number }[] }[] }[] }).resource_spans;
  assert.equal(rs.length, 2);
  assert.deepEqual(rs[0].scope_spans.map((ss) => ss.spans.map((s) => [s.name, s.kind, s.flags])),
    [[['GET /users/{id}', 2, 0x301]], [['GET', 3, 0x101]]]);
});

test('attribute values that are bytes of the captured head encode like the same strings', () => {
  const T = officialRequestType();
  const head = Buffer.from('GET /pâth?q=1 HTTP/1.1\r\nUser-Agent: curl/8 (x)\r\n\r\n', 'utf8');
  const rec = new SpanRecord();
  rec.newTraceId(); rec.newSpanId();
  rec.name = 'GET'; rec.kind = 2; rec.scope = 'otel-rust-agent/hyper'; rec.pid = 4242;
  rec.startUnixNano = T0; rec.endUnixNano = T0 + 5n;
  rec.src = head;
  const p0 = head.indexOf('/'), p1 = head.indexOf('?');
  rec.addBytes(attrKey('url.path'), p0, p1);
  rec.addBytes(attrKey('user_agent.original'), head.indexOf('curl'), head.indexOf('\r\n\r\n'));
  const asStrings = recordFromAgentSpan(rec.toAgentSpan());
  const e1 = new SpanBatchEncoder('1'); e1.add(rec, RES_A);
  const e2 = new SpanBatchEncoder('1'); e2.add(asStrings, RES_A);
  assert.deepEqual(decode(T, e1.finish()), decode(T, e2.finish()));
  assert.equal(rec.attributes()['url.path'], '/pâth');
});

test('bytes that are not UTF-8 become U+FFFD, so the request stays valid protobuf for any collector', () => {
  const T = officialRequestType();
  const head = Buffer.from([0x2f, 0x61, 0xe9, 0x62]); // "/a\xe9b": Latin-1, not UTF-8
  const rec = new SpanRecord();
  rec.newTraceId(); rec.newSpanId(); rec.name = 'GET'; rec.kind = 2; rec.scope = 's';
  rec.src = head;
  rec.addBytes(attrKey('url.path'), 0, 4);
  const e = new SpanBatchEncoder('1'); e.add(rec, RES_A);
  const req = decode(T, e.finish()) as { resource_spans: { scope_spans: { spans: { attributes: { value: { string_value: string } }[] }[] }[] }[] };
  assert.equal(req.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.string_value, '/a\ufffdb');
});

test('splitRequest halves a request and keeps every span with its resource and scope', () => {
  const T = officialRequestType();
  const list = spans();
  const whole = ours(list);
  const halves = splitRequest(whole)!;
  assert.deepEqual(halves.map(countSpans), [2, 2]);
  const flat = (b: Buffer) => (decode(T, b) as { resource_spans: { resource: unknown; scope_spans: { scope: unknown; spans: unknown[] }[] }[] })
    .resource_spans.flatMap((r) => r.scope_spans.flatMap((s) => s.spans.map((sp) => ({ r: r.resource, s: s.scope, sp }))));
  assert.deepEqual([...flat(halves[0]), ...flat(halves[1])], flat(whole));
});

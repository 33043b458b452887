// make demo-jaeger, checked through Jaeger's HTTP API (the one its UI uses):
// Jaeger v1.76.0 built from the Go module proxy, the agent exporting to it
// over OTLP/gRPC. Every request of the demo is a trace with the right span,
// and the traced caller's trace joins its spans and the agent's by their
// parent links, across two services.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runDemo, DemoResult } from '../../tools/jaeger-demo';
import { jaegerApi, tag, JaegerTrace, JaegerSpan } from '../../tools/jaeger';

let demo: DemoResult;

before(async () => {
  demo = await runDemo({ log: () => undefined });
});

after(async () => {
  await demo?.stop();
});

const serviceOf = (t: JaegerTrace, s: JaegerSpan) => t.processes[s.processID].serviceName;

test('Jaeger knows both services', async () => {
  const services = await jaegerApi<string[]>(demo.jaeger, '/api/services');
  assert.deepEqual(services.filter((s) => s.startsWith('demo-')).sort(), ['demo-client', 'demo-service']);
});

test('each plain request is one trace of one SERVER span, with its attributes and resource', async () => {
  const traces = await jaegerApi<JaegerTrace[]>(demo.jaeger, '/api/traces?service=demo-service&limit=100&lookback=1h');
  const single = traces.filter((t) => t.traceID !== demo.clientTrace.traceId);
  assert.equal(single.length, demo.plain.length);
  const byPath = new Map(single.map((t) => [String(tag(t.spans[0], 'url.path')), t]));
  for (const t of single) {
    assert.equal(t.spans.length, 1);
    const s = t.spans[0];
    assert.deepEqual(s.references, []);
    assert.equal(tag(s, 'span.kind'), 'server');
    assert.equal(tag(s, 'otel.scope.name'), 'otel-rust-agent/hyper');
    const p = t.processes[s.processID];
    assert.equal(p.serviceName, 'demo-service');
    assert.equal(tag(p, 'process.pid'), demo.servicePid);
    assert.equal(tag(p, 'telemetry.distro.name'), 'otel-rust-agent');
    assert.equal(tag(p, 'process.runtime.name'), 'rustc');
  }
  const users = byPath.get('/users/42')!.spans[0];
  // The demo's router is axum's: the span is named after the route.
  assert.equal(users.operationName, 'GET /users/{id}');
  assert.equal(tag(users, 'http.route'), '/users/{id}');
  assert.equal(tag(users, 'http.request.method'), 'GET');
  assert.equal(tag(users, 'url.query'), 'verbose=true');
  assert.equal(tag(users, 'http.response.status_code'), 200);
  const fail = byPath.get('/fail')!.spans[0];
  assert.equal(tag(fail, 'http.response.status_code'), 500);
  assert.equal(tag(fail, 'error'), true);
  assert.equal(tag(fail, 'otel.status_code'), 'ERROR');
  assert.equal(tag(fail, 'error.type'), '500');
  const slow = byPath.get('/slow')!.spans[0];
  assert.ok(slow.duration >= 25_000, `GET /slow?ms=25 took ${slow.duration} µs`);
  assert.equal(byPath.get('/echo')!.spans[0].operationName, 'POST /echo');
});

test('the caller\'s trace: checkout -> 3 CLIENT calls -> 3 SERVER spans from the agent, linked by parent', async () => {
  const [t] = await jaegerApi<JaegerTrace[]>(demo.jaeger, `/api/traces/${demo.clientTrace.traceId}`);
  assert.equal(t.spans.length, 7);
  const byId = new Map(t.spans.map((s) => [s.spanID, s]));
  const root = byId.get(demo.clientTrace.rootSpanId)!;
  assert.equal(root.operationName, 'checkout');
  assert.deepEqual(root.references, []);
  assert.equal(serviceOf(t, root), 'demo-client');
  for (const call of demo.clientTrace.calls) {
    const client = byId.get(call.spanId)!;
    assert.equal(serviceOf(t, client), 'demo-client');
    assert.equal(tag(client, 'span.kind'), 'client');
    assert.deepEqual(client.references, [{ refType: 'CHILD_OF', traceID: t.traceID, spanID: root.spanID }]);
    // Exactly one server span is the child of each call: the agent's.
    const servers = t.spans.filter((s) => s.references.some((r) => r.spanID === call.spanId));
    assert.equal(servers.length, 1, call.path);
    const server = servers[0];
    assert.equal(serviceOf(t, server), 'demo-service');
    assert.equal(tag(server, 'span.kind'), 'server');
    assert.deepEqual(server.references, [{ refType: 'CHILD_OF', traceID: t.traceID, spanID: call.spanId }]);
    assert.equal(tag(server, 'url.path'), call.path.split('?')[0]);
    assert.equal(tag(server, 'user_agent.original'), 'demo-client/1.0');
    // The server span lies within its client span (same host clock).
    assert.ok(server.startTime >= client.startTime && server.startTime + server.duration <= client.startTime + client.duration + 1000,
      `server ${server.startTime}+${server.duration} outside client ${client.startTime}+${client.duration}`);
  }
});

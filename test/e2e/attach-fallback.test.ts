// The perf-event uprobe fallback (kernels without uprobe_multi), forced here
// with OTEL_RUST_AGENT_ATTACH=perf: same spans, same counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, waitForStats } from '../helpers/procs';

test('perf-event uprobes give the same spans as uprobe_multi', async () => {
  const recv = await startOtlpReceiver({ grpc: true });
  const svc = await startService(serviceBinary('demo-service'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint], { OTEL_RUST_AGENT_ATTACH: 'perf' });
  try {
    assert.match(agent.stderr.text, /attach mode perf/);
    const reqs = [1, 2, 3, 4, 5].map((i) => `GET /users/${i}?run=perf HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await rawExchange(svc.port, reqs, 5);
    const spans = await recv.waitForSpans(5, 15_000);
    assert.deepEqual(spans.map((s) => s.attributes['url.path']).sort(), ['/users/1', '/users/2', '/users/3', '/users/4', '/users/5']);
    const st = await waitForStats(agent, (s) => s.probes.find((p) => p.probe === 'encode_status')!.hits >= 5);
    // h2's probes see no HTTP/1 traffic; axum routes each request; tokio
    // spawns one task: axum::serve's task for the one connection.
    assert.deepEqual(st.probes.map((p) => `${p.probe}:${p.hits}`), ['parse:6', 'encode_status:5', 'encode:0', 'encode_ret:0',
      'recv_headers:0', 'send_response:0', 'recv_reset:0', 'matched_path:5', 'spawn:1', 'spawn_blocking:0']);
  } finally {
    assert.equal(await agent.stop(), 0);
    await svc.stop();
    await recv.close();
  }
});

test('the layout-free fallback (encode entry + ret sites) gives the same spans and statuses', async () => {
  const recv = await startOtlpReceiver({ grpc: true });
  const svc = await startService(serviceBinary('demo-service'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint], { OTEL_RUST_AGENT_DISABLE_PROBES: 'encode_status' });
  try {
    const reqs = ['/users/1', '/fail', '/nope'].map((p) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const res = await rawExchange(svc.port, reqs, 3);
    assert.deepEqual(res.map((r) => r.status), [200, 500, 404]);
    const spans = await recv.waitForSpans(3, 15_000);
    const status = Object.fromEntries(spans.map((s) => [s.attributes['url.path'], s.attributes['http.response.status_code']]));
    assert.deepEqual(status, { '/users/1': 200, '/fail': 500, '/nope': 404 });
    const st = await waitForStats(agent, (s) => s.probes.find((p) => p.probe === 'encode_ret')!.hits >= 3);
    // /nope matches no route: 2 route hits for 3 requests; one spawn: the connection's task.
    assert.deepEqual(st.probes.map((p) => `${p.probe}:${p.hits}`), ['parse:4', 'encode:3', 'encode_ret:3',
      'recv_headers:0', 'send_response:0', 'recv_reset:0', 'matched_path:2', 'spawn:1', 'spawn_blocking:0']);
  } finally {
    assert.equal(await agent.stop(), 0);
    await svc.stop();
    await recv.close();
  }
});

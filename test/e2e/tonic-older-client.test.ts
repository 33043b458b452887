// End to end: tonic 0.12 and 0.13 clients (tonic-client's source built
// against tonic 0.12.3 and 0.13.1, each in a workspace of its own,
// apps/standalone/tonic01[23]-client, built here) calling the tonic 0.14
// server fixture. The same probes as for 0.14: tonic-client's
// prepare_request (the path by reference in rcx as in 0.14; 0.12/0.13 take
// it by value, which the ABI passes as a pointer) and Status::from_error,
// h2-client's wire probes. Only the caller is traced.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../helpers/rustbuild';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats } from '../helpers/procs';

/**
 * Server down is told (UNAVAILABLE) only when from_error gets tonic's transport::Error over tonic's
 * ConnectError (0.14). gdb on these fixtures: 0.12 hands it hyper-util's ConnectError, 0.13 another
 * error type; both are counted, not named.
 */
const VERSIONS = [
  { version: '0.12', app: 'tonic012-client', downTold: false },
  { version: '0.13', app: 'tonic013-client', downTold: false },
];

for (const { version, app, downTold } of VERSIONS) describe(`tonic ${version} client`, () => {
  let recv: OtlpReceiver;
  let server: Service;
  let caller: Service;
  let agent: RunningAgent;
  let target = '';

  function fixture(): string {
    const dir = path.join(repoRoot(), 'apps', 'standalone', app);
    execFileSync('cargo', ['build', '--release', '--locked', '-q'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
    return path.join(dir, 'target', 'release', app);
  }

  before(async () => {
    const bin = fixture();
    recv = await startOtlpReceiver({ grpc: false, http: true });
    server = await startService(serviceBinary('tonic-server'));
    caller = await startService(bin);
    target = `http://127.0.0.1:${server.port}`;
    agent = await attachAgent(['--pid', String(caller.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint], { OTEL_RUST_AGENT_CLIENT_TIMEOUT_MS: '1500' });
  });

  after(async () => {
    const code = await agent?.stop();
    await caller?.stop();
    await server?.stop();
    await recv?.close();
    assert.equal(code, 0, agent?.stderr.text);
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
    await new Promise((r) => setTimeout(r, 400));
  }

  const clientSpans = () => recv.spans().filter((s) => s.kind === 3);
  const handlerSpans = () => recv.spans().filter((s) => s.kind === 2 && s.attributes['url.path'] === '/grpc');
  const hits = (s: AgentStats, module: string, probe: string) => s.probes.find((p) => p.module === module && p.probe === probe)?.hits ?? 0;

  test(`tonic ${version}: unary OK and NOT_FOUND give one CLIENT span each with the exact RPC attributes, children of the handler span; 4 and 3 hits`, async () => {
    recv.clear();
    const before = await freshStats(agent);
    assert.deepEqual(await grpc({ method: 'get', id: 7 }), ['0']);
    assert.deepEqual(await grpc({ method: 'get', id: -5 }), ['5']);
    await settle(() => clientSpans().length >= 2 && handlerSpans().length >= 2);
    const cs = clientSpans();
    assert.equal(cs.length, 2);
    const ok = cs.find((s) => s.attributes['rpc.status_code'] === 'OK')!;
    assert.equal(ok.name, 'shop.v1.Catalog/GetProduct');
    assert.deepEqual(ok.attributes, {
      'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'OK',
      'server.address': '127.0.0.1', 'server.port': server.port,
    });
    assert.equal(ok.status.code, 0);
    assert.equal(ok.scope.name, 'otel-rust-agent/tonic');
    const nf = cs.find((s) => s.attributes['rpc.status_code'] === 'NOT_FOUND')!;
    assert.deepEqual(nf.attributes, {
      'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'NOT_FOUND',
      'server.address': '127.0.0.1', 'server.port': server.port, 'error.type': 'NOT_FOUND',
    });
    assert.equal(nf.status.code, 2);
    for (const c of cs) {
      const h = handlerSpans().find((x) => x.spanId === c.parentSpanId);
      assert.ok(h, 'child of its handler span');
      assert.equal(c.traceId, h.traceId);
    }
    const after = await waitForStats(agent, (s) => hits(s, 'h2-client', 'client_recv_headers') - hits(before, 'h2-client', 'client_recv_headers') >= 2);
    const d = (m: string, p: string) => hits(after, m, p) - hits(before, m, p);
    // The NOT_FOUND answer is trailers-only: no recv_trailers.
    assert.deepEqual([d('tonic-client', 'prepare_request'), d('h2-client', 'client_send_headers'), d('h2-client', 'client_recv_headers'), d('h2-client', 'client_recv_trailers'), d('tonic-client', 'status_from_error')], [2, 2, 2, 1, 0]);
    assert.equal(after.probes.filter((p) => p.module === 'tonic-client').reduce((a, p) => a + p.badLayout, 0), 0);
  });

  test(`tonic ${version}: a server that is down${downTold ? ' gives one CLIENT span UNAVAILABLE, ERROR, the handler span as parent' : ' is not told (the error reaching Status::from_error is not tonic\'s transport::Error over its ConnectError): no span, counted, the call dropped'}; 2 hits`, async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    });
    recv.clear();
    const before = await freshStats(agent);
    const out = await grpc({ target: `http://127.0.0.1:${port}`, method: 'get', id: 1 });
    assert.equal(out[0].split(' ')[0], '14');
    const t = (s: AgentStats, k: string) => s.spans['tonic-client']?.[k] ?? 0;
    const dropped = (s: AgentStats) => s.spans.context?.clientCallsDropped ?? 0;
    let after: AgentStats;
    if (downTold) {
      await settle(() => clientSpans().length >= 1 && handlerSpans().length >= 1);
      const cs = clientSpans();
      assert.equal(cs.length, 1);
      assert.deepEqual(cs[0].attributes, {
        'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'rpc.status_code': 'UNAVAILABLE', 'error.type': 'UNAVAILABLE',
      });
      assert.equal(cs[0].status.code, 2);
      assert.equal(cs[0].parentSpanId, handlerSpans()[0].spanId);
      after = await freshStats(agent);
      assert.equal(t(after, 'unavailableSpans') - t(before, 'unavailableSpans'), 1);
    } else {
      // Dropped by the context at twice the 1.5 s client timeout.
      after = await waitForStats(agent, (s) => dropped(s) - dropped(before) >= 1);
      assert.equal(dropped(after) - dropped(before), 1);
      assert.equal(clientSpans().length, 0);
      assert.equal(t(after, 'transportErrorsOther') - t(before, 'transportErrorsOther'), 1);
    }
    assert.equal(t(after, 'transportErrors') - t(before, 'transportErrors'), 1);
    const d = (m: string, p: string) => hits(after, m, p) - hits(before, m, p);
    assert.deepEqual([d('tonic-client', 'prepare_request'), d('tonic-client', 'status_from_error'), d('h2-client', 'client_send_headers')], [1, 1, 0]);
  });

});

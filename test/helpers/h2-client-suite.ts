// The HTTP/2 CLIENT span cases of reqwest over h2c (prior knowledge) and over
// TLS with ALPN h2 against local Node http2 servers, for one reqwest fixture:
// registered by h2-client.test.ts (reqwest 0.12, h2 0.4) and
// reqwest011-h2.test.ts (reqwest 0.11, h2 0.3). A reqwest call over HTTP/2
// gives exactly one span: hyper's HTTP/1 probes never see it (no
// encode/parse), h2-client sees its stream once.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { testPki } from './tls';
import { startOtlpReceiver, OtlpReceiver } from './otlp-receiver';
import { startService, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats } from './procs';

/** `label` names the fixture in test names; `withReset` adds the RST_STREAM case. */
export function h2ClientSuite(label: string, binary: () => string, withReset = false): void {
  describe(label, () => {
  let recv: OtlpReceiver;
  let svc: Service;
  let agent: RunningAgent;
  let h2c: http2.Http2Server;
  let h2cPort = 0;
  let h2s: http2.Http2SecureServer;
  let h2sPort = 0;

  function answer(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    if (req.url.startsWith('/missing')) { res.writeHead(404); res.end('no'); return; }
    if (req.url.startsWith('/unavailable')) { res.writeHead(503); res.end('busy'); return; }
    if (req.url.startsWith('/reset')) { req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR); return; } // RST_STREAM, no response
    res.end('ok');
  }

  before(async () => {
    h2c = http2.createServer(answer);
    await new Promise<void>((r) => h2c.listen(0, '127.0.0.1', r));
    h2cPort = (h2c.address() as AddressInfo).port;
    const pki = testPki();
    h2s = http2.createSecureServer({ key: pki.serverKey, cert: pki.serverCert, allowHTTP1: false }, answer);
    await new Promise<void>((r) => h2s.listen(0, '127.0.0.1', r));
    h2sPort = (h2s.address() as AddressInfo).port;
    recv = await startOtlpReceiver({ grpc: false, http: true });
    svc = await startService(binary());
    agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'caller']);
  });

  after(async () => {
    const code = await agent?.stop();
    await svc?.stop();
    await recv?.close();
    await new Promise((r) => h2c?.close(r));
    await new Promise((r) => h2s?.close(r));
    assert.equal(code, 0, agent?.stderr.text);
  });

  async function call(q: Record<string, string | number>): Promise<string[]> {
    const qs = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString();
    const res = await fetch(`http://127.0.0.1:${svc.port}/call?${qs}`);
    assert.equal(res.status, 200);
    return (await res.text()).trim().split('\n');
  }

  async function settle(pred: () => boolean, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 400));
  }

  const clientSpans = () => recv.spans().filter((s) => s.kind === 3);
  const hits = (s: AgentStats, module: string, probe: string) => s.probes.find((p) => p.module === module && p.probe === probe)?.hits ?? 0;
  const PROBES: [string, string][] = [
    ['h2-client', 'client_send_headers'], ['h2-client', 'client_recv_headers'], ['h2-client', 'client_recv_trailers'],
    ['hyper-h1-client', 'client_encode'], ['hyper-h1-client', 'client_parse'], ['hyper-h1-client', 'reqwest_execute'],
  ];
  async function hitsSince(before: AgentStats, n: number): Promise<number[]> {
    const after = await waitForStats(agent, (s) => hits(s, 'h2-client', 'client_recv_headers') - hits(before, 'h2-client', 'client_recv_headers') >= n);
    return PROBES.map(([m, p]) => hits(after, m, p) - hits(before, m, p));
  }

  test(`${label} over h2c: one CLIENT span per call with the exact HTTP attributes (network.protocol.version 2); 404/503 ERROR; no HTTP/1 span`, async () => {
    recv.clear();
    const before = await freshStats(agent);
    assert.deepEqual(await call({ url: `http://127.0.0.1:${h2cPort}/ok?a=1&sig=secret`, h2c: 1 }), ['200']);
    assert.deepEqual(await call({ url: `http://127.0.0.1:${h2cPort}/missing`, h2c: 1 }), ['404']);
    assert.deepEqual(await call({ url: `http://127.0.0.1:${h2cPort}/unavailable`, h2c: 1 }), ['503']);
    await settle(() => clientSpans().length >= 3);
    const cs = clientSpans();
    assert.equal(cs.length, 3);
    const by = (p: string) => cs.find((s) => s.attributes['url.full'] === `http://127.0.0.1:${h2cPort}${p}`)!;
    const ok = by('/ok?a=1&sig=REDACTED');
    assert.ok(ok, JSON.stringify(cs.map((s) => s.attributes)));
    assert.equal(ok.name, 'GET');
    assert.deepEqual(ok.attributes, {
      'http.request.method': 'GET', 'url.full': `http://127.0.0.1:${h2cPort}/ok?a=1&sig=REDACTED`,
      'server.address': '127.0.0.1', 'server.port': h2cPort, 'network.protocol.version': '2', 'http.response.status_code': 200,
    });
    assert.equal(ok.status.code, 0);
    assert.equal(ok.scope.name, 'otel-rust-agent/h2-client');
    // reqwest's call event (hyper-h1-client) gives the span its parent: the handler's server span.
    const handlers = recv.spans().filter((s) => s.kind === 2 && s.attributes['url.path'] === '/call');
    assert.equal(handlers.length, 3);
    for (const c of cs) {
      const h = handlers.find((x) => x.spanId === c.parentSpanId);
      assert.ok(h, 'a child of its handler span');
      assert.equal(c.traceId, h.traceId);
      assert.ok(c.startTimeUnixNano >= h.startTimeUnixNano && c.endTimeUnixNano <= h.endTimeUnixNano);
    }
    const missing = by('/missing');
    assert.equal(missing.status.code, 2);
    assert.equal(missing.attributes['error.type'], '404');
    assert.equal(missing.attributes['http.response.status_code'], 404);
    const busy = by('/unavailable');
    assert.equal(busy.status.code, 2);
    assert.equal(busy.attributes['error.type'], '503');
    // send_headers + recv_headers per call; no trailers; hyper's HTTP/1 probes untouched; reqwest's call probe once per call.
    assert.deepEqual(await hitsSince(before, 3), [3, 3, 0, 0, 0, 3]);
  });

  test(`${label} over TLS with ALPN h2: url.full https (the :scheme h2 sends), network.protocol.version 2; 50 concurrent calls give exactly 50 spans`, async () => {
    recv.clear();
    const before = await freshStats(agent);
    const out = await call({ url: `https://127.0.0.1:${h2sPort}/ok?tls=1`, n: 50 });
    assert.equal(out.length, 50);
    assert.ok(out.every((l) => l === '200'), out.join(','));
    await settle(() => clientSpans().length >= 50);
    const cs = clientSpans();
    assert.equal(cs.length, 50);
    for (const c of cs) {
      assert.deepEqual(c.attributes, {
        'http.request.method': 'GET', 'url.full': `https://127.0.0.1:${h2sPort}/ok?tls=1`,
        'server.address': '127.0.0.1', 'server.port': h2sPort, 'network.protocol.version': '2', 'http.response.status_code': 200,
      });
    }
    const [h] = recv.spans().filter((s) => s.kind === 2 && s.attributes['url.path'] === '/call');
    for (const c of cs) { assert.equal(c.parentSpanId, h.spanId); assert.equal(c.traceId, h.traceId); }
    assert.deepEqual(await hitsSince(before, 50), [50, 50, 0, 0, 0, 50]);
    const after = await freshStats(agent);
    assert.equal(after.spans['h2-client'].pending, 0);
    assert.equal(after.spans['h2-client'].parentHits - (before.spans['h2-client']?.parentHits ?? 0), 50);
  });

  if (withReset) test('reqwest 0.12 over h2c: a stream the server resets (RST_STREAM INTERNAL_ERROR) ends ERROR with error.type the RFC 9113 name, counted', async () => {
    recv.clear();
    const before = await freshStats(agent);
    assert.deepEqual(await call({ url: `http://127.0.0.1:${h2cPort}/reset`, h2c: 1 }), ['error request']);
    await settle(() => clientSpans().length >= 1);
    const cs = clientSpans();
    assert.equal(cs.length, 1);
    assert.deepEqual(cs[0].attributes, {
      'http.request.method': 'GET', 'url.full': `http://127.0.0.1:${h2cPort}/reset`, 'server.address': '127.0.0.1', 'server.port': h2cPort,
      'network.protocol.version': '2', 'error.type': 'INTERNAL_ERROR',
    });
    assert.equal(cs[0].status.code, 2);
    const after = await waitForStats(agent, (s) => (s.spans['h2-client']?.resets ?? 0) - (before.spans['h2-client']?.resets ?? 0) >= 1);
    assert.equal(hits(after, 'h2-client', 'client_send_headers') - hits(before, 'h2-client', 'client_send_headers'), 1);
    assert.equal(hits(after, 'h2-client', 'client_recv_headers') - hits(before, 'h2-client', 'client_recv_headers'), 0);
    assert.equal(hits(after, 'h2-client', 'client_recv_reset') - hits(before, 'h2-client', 'client_recv_reset'), 1);
    assert.equal(after.spans['h2-client'].pending, 0);
  });
  });
}

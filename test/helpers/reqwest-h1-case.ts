// The HTTP/1 CLIENT span case shared by the reqwest 0.11 and 0.13 tests (the
// same fixture source, built against each version): a plain call, a followed
// redirect (one span per hop, resend_count on the second), a 404 through
// reqwest::blocking, each the child of its handler's SERVER span, and the
// probe hits that cost (3 per call: execute, encode, parse; the redirect hop
// adds an encode and a parse; blocking adds its hand-over probe).
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OtlpReceiver } from './otlp-receiver';
import { freshStats, waitForStats, type Service, type RunningAgent, type AgentStats } from './procs';

/** A local HTTP/1 server: /ok… answers 200, /chain redirects to /ok?hop=2, anything else 404. */
export async function startRedirectTarget(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/chain') { res.writeHead(302, { location: '/ok?hop=2' }); res.end(); return; }
    if (req.url!.startsWith('/ok')) { res.end('ok'); return; }
    res.writeHead(404); res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** GET /call?… on the fixture: its answer's lines (one status per call it made). */
export function fixtureCall(svc: () => Service): (q: Record<string, string | number>) => Promise<string[]> {
  return async (q) => {
    const res = await fetch(`http://127.0.0.1:${svc().port}/call?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`);
    assert.equal(res.status, 200);
    return (await res.text()).trim().split('\n');
  };
}

export const probeHits = (s: AgentStats, module: string, probe: string) => s.probes.find((p) => p.module === module && p.probe === probe)?.hits ?? 0;

/** `tag` makes the first call's URL unique to the version (`/ok?v=<tag>`). */
export async function assertH1Calls(recv: OtlpReceiver, agent: RunningAgent, call: (q: Record<string, string | number>) => Promise<string[]>, tport: number, tag: string): Promise<void> {
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${tport}/ok?v=${tag}` }), ['200']);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${tport}/chain` }), ['200']);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${tport}/nope`, mode: 'blocking' }), ['404']);
  await recv.waitForSpans(3 + 4, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const cs = recv.spans().filter((s) => s.kind === 3);
  assert.equal(cs.length, 4);
  const by = (u: string) => cs.find((s) => s.attributes['url.full'] === `http://127.0.0.1:${tport}${u}`)!;
  assert.deepEqual(by(`/ok?v=${tag}`).attributes, {
    'http.request.method': 'GET', 'url.full': `http://127.0.0.1:${tport}/ok?v=${tag}`, 'server.address': '127.0.0.1', 'server.port': tport,
    'network.protocol.version': '1.1', 'http.response.status_code': 200,
  });
  const servers = recv.spans().filter((s) => s.kind === 2);
  const srv = (q: string) => servers.find((s) => String(s.attributes['url.query']).includes(encodeURIComponent(q)))!;
  assert.equal(by(`/ok?v=${tag}`).parentSpanId, srv(`/ok?v=${tag}`).spanId);
  assert.equal(by('/chain').attributes['http.response.status_code'], 302);
  assert.equal(by('/chain').attributes['http.request.resend_count'], undefined);
  assert.equal(by('/ok?hop=2').attributes['http.request.resend_count'], 1);
  for (const u of ['/chain', '/ok?hop=2']) assert.equal(by(u).parentSpanId, srv('/chain').spanId);
  assert.equal(by('/nope').status.code, 2);
  assert.equal(by('/nope').attributes['error.type'], '404');
  // reqwest::blocking runs the call on its own runtime thread; the blocking
  // execute probe on the calling thread links it to the handler's span (issue 8).
  assert.equal(by('/nope').parentSpanId, srv('/nope').spanId);
  const h = (s: AgentStats, m: string, p: string) => probeHits(s, m, p);
  const after = await waitForStats(agent, (s) => h(s, 'hyper-h1-client', 'client_parse') - h(before, 'hyper-h1-client', 'client_parse') >= 4);
  const d = (m: string, p: string) => h(after, m, p) - h(before, m, p);
  assert.deepEqual([d('hyper-h1-client', 'reqwest_execute'), d('hyper-h1-client', 'client_encode'), d('hyper-h1-client', 'reqwest_blocking_execute'),
    d('hyper-h1-client', 'client_parse'), d('h2-client', 'client_send_headers')], [3, 4, 1, 4, 0]);
  assert.equal(after.spans['hyper-h1-client'].pending, 0);
}

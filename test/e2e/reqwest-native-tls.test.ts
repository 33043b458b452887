// End to end: reqwest 0.12 with its native-tls backend (OpenSSL through
// native-tls and hyper-tls, no rustls) calling a local HTTPS server (HTTP/1.1;
// Node offers no ALPN h2 here). The fixture is reqwest12-client's source in a
// cargo workspace of its own (apps/standalone/reqwest12-native-client: in the
// apps workspace, feature unification would switch every reqwest 0.12
// fixture to native-tls), built here. Hyper's encode/parse see the plaintext
// heads on both sides of OpenSSL exactly as with rustls, and the call probe
// sees the URL, so url.full says https.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as https from 'node:https';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { testPki } from '../helpers/tls';
import { repoRoot } from '../helpers/rustbuild';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let tlsTarget: https.Server;
let tlsPort = 0;

function nativeFixture(): string {
  const dir = path.join(repoRoot(), 'apps', 'standalone', 'reqwest12-native-client');
  execFileSync('cargo', ['build', '--release', '--locked', '-q'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  return path.join(dir, 'target', 'release', 'reqwest12-native-client');
}

before(async () => {
  const bin = nativeFixture();
  // The binary really is OpenSSL's and not rustls' (dynamically linked libssl).
  const ldd = execFileSync('ldd', [bin], { encoding: 'utf8' });
  assert.match(ldd, /libssl\.so/);
  const nm = execFileSync('nm', ['-C', bin], { encoding: 'utf8', maxBuffer: 256 << 20 });
  assert.doesNotMatch(nm, / rustls::/);
  const pki = testPki();
  tlsTarget = https.createServer({ key: pki.serverKey, cert: pki.serverCert }, (req, res) => {
    if (req.url!.startsWith('/missing')) { res.writeHead(404); res.end(); return; }
    res.end('secure');
  });
  await new Promise<void>((r) => tlsTarget.listen(0, '127.0.0.1', r));
  tlsPort = (tlsTarget.address() as AddressInfo).port;
  recv = await startOtlpReceiver({ grpc: false, http: true });
  svc = await startService(bin);
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint]);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => tlsTarget?.close(r));
  assert.equal(code, 0, agent?.stderr.text);
});

async function call(q: Record<string, string | number>): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${svc.port}/call?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`);
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n');
}
const hits = (s: AgentStats, probe: string) => s.probes.find((p) => p.module === 'hyper-h1-client' && p.probe === probe)?.hits ?? 0;

test('reqwest 0.12 over native-tls (OpenSSL, HTTP/1.1): one CLIENT span per call, url.full https, exact attributes, the handler span as parent; 3 hits', async () => {
  recv.clear();
  const before = await freshStats(agent);
  assert.deepEqual(await call({ url: `https://127.0.0.1:${tlsPort}/secure?token=1` }), ['200']);
  assert.deepEqual(await call({ url: `https://localhost:${tlsPort}/missing` }), ['404']);
  await recv.waitForSpans(2 + 2, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const cs = recv.spans().filter((s) => s.kind === 3);
  assert.equal(cs.length, 2);
  const ok = cs.find((s) => s.attributes['http.response.status_code'] === 200)!;
  assert.equal(ok.name, 'GET');
  assert.deepEqual(ok.attributes, {
    'http.request.method': 'GET', 'url.full': `https://127.0.0.1:${tlsPort}/secure?token=1`,
    'server.address': '127.0.0.1', 'server.port': tlsPort, 'network.protocol.version': '1.1', 'http.response.status_code': 200,
  });
  assert.equal(ok.status.code, 0);
  const missing = cs.find((s) => s.attributes['http.response.status_code'] === 404)!;
  assert.deepEqual(missing.attributes, {
    'http.request.method': 'GET', 'url.full': `https://localhost:${tlsPort}/missing`,
    'server.address': 'localhost', 'server.port': tlsPort, 'network.protocol.version': '1.1', 'http.response.status_code': 404, 'error.type': '404',
  });
  assert.equal(missing.status.code, 2);
  const servers = recv.spans().filter((s) => s.kind === 2);
  for (const c of cs) {
    const srv = servers.find((s) => s.spanId === c.parentSpanId);
    assert.ok(srv, 'the handler span is the parent');
    assert.equal(c.traceId, srv.traceId);
  }
  const after = await waitForStats(agent, (s) => hits(s, 'client_parse') - hits(before, 'client_parse') >= 2);
  for (const p of ['reqwest_execute', 'client_encode', 'client_parse']) assert.equal(hits(after, p) - hits(before, p), 2, p);
});

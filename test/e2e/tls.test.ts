// End to end: the axum 0.8 fixture serving HTTP/1.1 and HTTP/2 over TLS
// (rustls, a certificate made here with openssl) and plaintext on another
// port, in one process. TLS is told from the code path (the rustls handshake
// in the connection's task), so the same process gives https and http spans.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, waitForStats, freshStats, Service, RunningAgent } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let tlsPort: number;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-e2e-'));

before(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  recv = await startOtlpReceiver({ grpc: true, http: false });
  svc = await startService(serviceBinary('axum08-server'), { TLS_CERT: path.join(dir, 'cert.pem'), TLS_KEY: path.join(dir, 'key.pem') });
  tlsPort = Number((await svc.stdout.wait(/tls port 127\.0\.0\.1:(\d+)/, 5000))[1]);
  agent = await attachAgent(['--pid', String(svc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, `agent exit code; stderr:\n${agent?.stderr.text}`);
});

async function one(pred: (s: ReceivedSpan) => boolean): Promise<ReceivedSpan> {
  const end = Date.now() + 15_000;
  for (;;) {
    const got = recv.spans().filter(pred);
    if (got.length > 0 || Date.now() > end) { assert.equal(got.length, 1); return got[0]; }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function curl(args: string[]): string {
  return execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', ...args], { encoding: 'utf8' });
}

test('HTTP/2 over TLS (ALPN h2): url.scheme https, the rest as over h2c', async () => {
  assert.equal(curl(['-k', '--http2', '-A', 'tls-h2/1', `https://127.0.0.1:${tlsPort}/users/5?via=tls-h2`]), '2 200');
  const s = await one((x) => x.attributes['url.query'] === 'via=tls-h2');
  assert.equal(s.name, 'GET /users/{id}');
  assert.deepEqual(s.attributes, {
    'http.request.method': 'GET', 'url.path': '/users/5', 'url.query': 'via=tls-h2', 'url.scheme': 'https',
    'server.address': '127.0.0.1', 'server.port': tlsPort, 'user_agent.original': 'tls-h2/1',
    'network.protocol.version': '2', 'http.response.status_code': 200, 'http.route': '/users/{id}',
  });
});

test('HTTP/1.1 over TLS: url.scheme https', async () => {
  assert.equal(curl(['-k', '--http1.1', '-A', 'tls-h1/1', `https://127.0.0.1:${tlsPort}/fail?via=tls-h1`]), '1.1 500');
  const s = await one((x) => x.attributes['url.query'] === 'via=tls-h1');
  assert.equal(s.name, 'GET /fail');
  assert.deepEqual(s.attributes, {
    'http.request.method': 'GET', 'url.path': '/fail', 'url.query': 'via=tls-h1', 'url.scheme': 'https',
    'server.address': '127.0.0.1', 'server.port': tlsPort, 'user_agent.original': 'tls-h1/1',
    'network.protocol.version': '1.1', 'http.response.status_code': 500, 'error.type': '500', 'http.route': '/fail',
  });
  assert.equal(s.status.code, 2);
});

test('the same process over plaintext (h2c and HTTP/1.1): url.scheme http', async () => {
  assert.equal(curl(['--http2-prior-knowledge', `http://127.0.0.1:${svc.port}/users/6?via=h2c`]), '2 200');
  assert.equal(curl(['--http1.1', `http://127.0.0.1:${svc.port}/users/6?via=h1`]), '1.1 200');
  assert.equal((await one((x) => x.attributes['url.query'] === 'via=h2c')).attributes['url.scheme'], 'http');
  assert.equal((await one((x) => x.attributes['url.query'] === 'via=h1')).attributes['url.scheme'], 'http');
  const st = await freshStats(agent);
  assert.equal(st.spans.context.schemeUnknown, 0);
  assert.ok(st.spans['rustls-server'].handshakes >= 2);
  assert.equal(st.spans['rustls-server'].outsideTasks, 0);
});

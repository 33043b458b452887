// Three services on one host, one agent (issue 8, items 2 and 3): A (axum +
// reqwest + tonic client: apps/tonic-client's /three) calls B (axum, HTTP/1:
// apps/axum08-server) and C (tonic server over h2c: apps/tonic-server); the
// agent traces the three executables (a repeated --exe). Each request to A
// must give exactly one trace: A SERVER -> A CLIENT (HTTP) -> B SERVER and
// A SERVER -> A CLIENT (gRPC) -> C SERVER, every id and parent link checked.
// The HTTP/1 leg's traceparent is inserted by the sk_msg program after the
// request line, the gRPC leg's as an HPACK literal appended to the HEADERS
// frame (src/propagation). The h2c insertion is also checked from the
// receiving side: a Node h2c server records what arrived, compared with the
// same calls made before the agent attached (header exact, body identical,
// small and large message).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { serviceBinary, startAgent, runAgentSync, waitForStats, freshStats, Service, RunningAgent, AgentStats, makeTestCgroup, startServiceInCgroup, removeTestCgroup, propagationAttached } from '../helpers/procs';

interface H2Received { headers: [string, string][]; body: Buffer }

let recv: OtlpReceiver;
let dir = '';
let cgroup = '';
const exe = { a: '', b: '', c: '' };
const svc: Partial<Record<'a' | 'b' | 'c', Service>> = {};
let agent: RunningAgent | undefined;
/** Two recording h2c servers: one for the calls before the agent (its connection stays open, unseen by sock_ops), one after. */
const rec: { server: http2.Http2Server; port: number; got: H2Received[] }[] = [];
const baseline = new Map<number, H2Received>();

function recordingH2(got: H2Received[]): http2.Http2Server {
  const s = http2.createServer();
  s.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i], raw[i + 1]]);
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => {
      got.push({ headers, body: Buffer.concat(parts) });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0])); // one empty Product
    });
    stream.on('error', () => { /* the client went away */ });
  });
  return s;
}

/** The fixture's pad pattern (apps/tonic-client get_product_padded). */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

async function three(b: string, c: string, id: number, pad = 0, headers: Record<string, string> = {}): Promise<string> {
  const qs = new URLSearchParams({ b, c, id: String(id), pad: String(pad) }).toString();
  const res = await fetch(`http://127.0.0.1:${svc.a!.port}/three?${qs}`, { headers });
  assert.equal(res.status, 200);
  return (await res.text()).trim();
}

const h2 = (a: AgentStats) => a.spans['h2-client'] ?? {};
const d = (x: AgentStats, y: AgentStats, k: string) => (h2(x)[k] ?? 0) - (h2(y)[k] ?? 0);

before(async () => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'three-services-')));
  // Copies: the agent traces every process of these paths, and only the test's.
  for (const [k, app] of [['a', 'tonic-client'], ['b', 'axum08-server'], ['c', 'tonic-server']] as const) {
    exe[k] = path.join(dir, `svc-${k}`);
    fs.copyFileSync(serviceBinary(app), exe[k]);
    fs.chmodSync(exe[k], 0o755);
  }
  cgroup = makeTestCgroup('three');
  for (const k of ['a', 'b', 'c'] as const) {
    svc[k] = await startServiceInCgroup(cgroup, exe[k]);
  }
  for (let i = 0; i < 2; i++) {
    const got: H2Received[] = [];
    const server = recordingH2(got);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    rec.push({ server, port: (server.address() as AddressInfo).port, got });
  }
  // Without the agent: what the gRPC calls send (small and large message).
  // The HTTP/1 leg goes to a throwaway server: a connection A keeps open to B
  // from before the agent would never pass the socket program.
  const other = (await import('node:http')).createServer((_q, r) => r.end('ok'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  for (const pad of [1, 300_000]) {
    rec[0].got.length = 0;
    assert.equal(await three(`http://127.0.0.1:${(other.address() as AddressInfo).port}/x`, `http://127.0.0.1:${rec[0].port}`, 7, pad), '200 0');
    assert.equal(rec[0].got.length, 1);
    baseline.set(pad, rec[0].got[0]);
  }
  other.closeAllConnections();
  await new Promise((r) => other.close(r));
  recv = await startOtlpReceiver({ grpc: false, http: true });
  agent = startAgent(['--exe', exe.a, '--exe', exe.b, '--exe', exe.c, '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint]);
  for (const k of ['a', 'b', 'c'] as const) await agent.stderr.wait(new RegExp(`tracing every process of ${exe[k]}: `), 60_000);
  await propagationAttached(agent, 20_000);
});

after(async () => {
  const code = await agent?.stop();
  for (const s of Object.values(svc)) await s?.stop();
  await recv?.close();
  for (const r of rec) await new Promise((ok) => r.server.close(ok));
  removeTestCgroup(cgroup);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, agent?.stderr.text);
});

async function spansUntil(pred: (all: ReceivedSpan[]) => boolean, what: string, ms = 20_000): Promise<ReceivedSpan[]> {
  const end = Date.now() + ms;
  for (;;) {
    const all = recv.spans();
    if (pred(all)) return all;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; have ${all.length} spans:\n${all.map((s) => `${s.kind} ${s.name} ${s.resource['process.executable.path']} ${s.traceId}/${s.spanId}<-${s.parentSpanId}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('start-up line and inspect: the HTTP/1 and h2c paths are active, and why; TLS goes out unchanged', () => {
  const text = agent!.stderr.text;
  assert.match(text, /trace context propagation: socket-level insertion \(sk_msg\): sock_ops and sk_msg programs load: traceparent inserted into plaintext HTTP\/1 request heads and h2c HEADERS frames/);
  assert.match(text, /; HTTP\/1: active: /);
  assert.match(text, /; h2c: active: an HPACK literal \(without indexing, new name\) appended to the header block/);
  assert.match(text, /; TLS: unchanged: /);
  assert.match(text, new RegExp(`sock_ops attached to cgroup /otel-rust-agent-three-${process.pid} \\(process \\d+\\)`));
  const r = runAgentSync(['inspect', exe.a, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { propagation: { path: string; paths: { http1: string; h2c: string; tls: string } } };
  assert.equal(j.propagation.path, 'sk_msg');
  assert.match(j.propagation.paths.http1, /^active: /);
  assert.match(j.propagation.paths.h2c, /^active: /);
  assert.match(j.propagation.paths.tls, /^unchanged: /);
  const t = runAgentSync(['inspect', exe.a]);
  assert.match(t.stdout, /propagation socket-level insertion \(sk_msg\): .*h2c: active: /);
});

test('each request to A gives exactly one trace over A, B and C: every id and parent link', async () => {
  const N = 6;
  const before = await freshStats(agent!);
  const base = recv.spans().length;
  for (let i = 1; i <= N; i++) {
    assert.equal(await three(`http://127.0.0.1:${svc.b!.port}/users/${100 + i}`, `http://127.0.0.1:${svc.c!.port}`, i), '200 0');
  }
  const of = (all: ReceivedSpan[], k: 'a' | 'b' | 'c') => all.slice(base).filter((s) => s.resource['process.executable.path'] === exe[k]);
  const all = await spansUntil((x) => of(x, 'a').length === 3 * N && of(x, 'b').length === N && of(x, 'c').length === N, `${5 * N} spans`);
  const aServer = of(all, 'a').filter((s) => s.kind === 2);
  const aHttp = of(all, 'a').filter((s) => s.kind === 3 && s.attributes['rpc.system.name'] === undefined);
  const aGrpc = of(all, 'a').filter((s) => s.kind === 3 && s.attributes['rpc.system.name'] === 'grpc');
  const bServer = of(all, 'b').filter((s) => s.kind === 2);
  const cServer = of(all, 'c').filter((s) => s.kind === 2);
  assert.deepEqual([aServer.length, aHttp.length, aGrpc.length, bServer.length, cServer.length], [N, N, N, N, N]);
  const mid = await freshStats(agent!);
  const h1 = (x: AgentStats, k: string) => x.spans['hyper-h1-client']?.[k] ?? 0;
  assert.equal(h1(mid, 'propInjected') - h1(before, 'propInjected'), N, `HTTP/1 leg: ${JSON.stringify(mid.spans['hyper-h1-client'])}`);
  const traces = new Set(all.slice(base).map((s) => s.traceId));
  assert.equal(traces.size, N, `one trace per request to A: ${all.slice(base).map((s) => `${s.kind} ${s.name} ${String(s.resource['process.executable.path']).slice(-5)} ${s.traceId}/${s.spanId}<-${s.parentSpanId}`).join('\n')}`);
  for (const srv of aServer) {
    assert.equal(srv.name, 'GET /three');
    assert.equal(srv.parentSpanId, '', 'A SERVER is the root');
    const inTrace = all.slice(base).filter((s) => s.traceId === srv.traceId);
    assert.equal(inTrace.length, 5, `trace ${srv.traceId}: ${inTrace.map((s) => s.name).join(', ')}`);
    const hc = aHttp.filter((s) => s.traceId === srv.traceId);
    const gc = aGrpc.filter((s) => s.traceId === srv.traceId);
    assert.equal(hc.length, 1);
    assert.equal(gc.length, 1);
    assert.equal(hc[0].parentSpanId, srv.spanId, 'A CLIENT (HTTP) <- A SERVER');
    assert.equal(gc[0].parentSpanId, srv.spanId, 'A CLIENT (gRPC) <- A SERVER');
    assert.equal(gc[0].name, 'shop.v1.Catalog/GetProduct');
    const id = /\/users\/(\d+)$/.exec(String(hc[0].attributes['url.full']))?.[1];
    const b = bServer.filter((s) => s.traceId === srv.traceId);
    assert.equal(b.length, 1);
    assert.equal(b[0].parentSpanId, hc[0].spanId, 'B SERVER <- A CLIENT (HTTP)');
    assert.equal(b[0].attributes['url.path'], `/users/${id}`);
    const c = cServer.filter((s) => s.traceId === srv.traceId);
    assert.equal(c.length, 1);
    assert.equal(c[0].parentSpanId, gc[0].spanId, 'C SERVER <- A CLIENT (gRPC)');
    assert.equal(c[0].name, 'shop.v1.Catalog/GetProduct');
  }
  const after = await freshStats(agent!);
  assert.equal(d(after, before, 'propInjected'), N, JSON.stringify(h2(after)));
  assert.equal(d(after, before, 'propSpans'), N);
  for (const k of ['propSplit', 'propContinuation', 'propPadded', 'propTooLarge', 'propPushFailed', 'propStale', 'propMulti', 'propLostSync', 'propNoEntry', 'propAmbiguous'])
    assert.equal(d(after, before, k), 0, `${k}: ${JSON.stringify(h2(after))}`);
  assert.equal((after.spans['hyper-h1-client']?.propInjected ?? 0) - (before.spans['hyper-h1-client']?.propInjected ?? 0), N);
});

test('h2c insertion checked from the receiving side: the header exact, the rest as without the agent (small and 300 kB message)', async () => {
  const r = rec[1];
  for (const pad of [1, 300_000]) {
    r.got.length = 0;
    const base = recv.spans().length;
    const before = await freshStats(agent!);
    assert.equal(await three(`http://127.0.0.1:${svc.b!.port}/users/0`, `http://127.0.0.1:${r.port}`, 7, pad), '200 0');
    assert.equal(r.got.length, 1);
    const got = r.got[0];
    const tp = got.headers.filter(([k]) => k === 'traceparent');
    assert.equal(tp.length, 1, JSON.stringify(got.headers));
    const all = await spansUntil((x) => x.slice(base).some((s) => s.kind === 3 && s.attributes['rpc.system.name'] === 'grpc'), 'the gRPC client span');
    const gc = all.slice(base).filter((s) => s.kind === 3 && s.attributes['rpc.system.name'] === 'grpc');
    assert.equal(gc.length, 1);
    assert.equal(tp[0][1], `00-${gc[0].traceId}-${gc[0].spanId}-01`);
    const srv = all.slice(base).find((s) => s.kind === 2 && s.traceId === gc[0].traceId && s.resource['process.executable.path'] === exe.a);
    assert.ok(srv, 'the A SERVER span of that trace');
    assert.equal(gc[0].parentSpanId, srv!.spanId);
    // Everything else as without the agent: the header list minus traceparent (and :authority, another port), the body byte for byte.
    const strip = (h: [string, string][]) => h.filter(([k]) => k !== 'traceparent' && k !== ':authority');
    const b = baseline.get(pad)!;
    assert.deepEqual(strip(got.headers), strip(b.headers));
    assert.equal(got.headers[got.headers.length - 1][0], 'traceparent', 'appended after the other fields');
    assert.ok(got.body.equals(b.body), `body differs (${got.body.length} vs ${b.body.length} bytes)`);
    assert.ok(got.body.length > pad, 'the message carries the pad');
    assert.ok(got.body.subarray(got.body.length - pad).equals(pattern(pad)), 'the pad bytes are the fixture pattern');
    const after = await freshStats(agent!);
    assert.equal(d(after, before, 'propInjected'), 1, JSON.stringify(h2(after)));
    assert.equal(d(after, before, 'propLostSync'), 0);
  }
});

test('tracestate on the tonic h2c leg: A\'s incoming tracestate goes out exactly after the traceparent (and on the HTTP/1 leg), the rest as without the agent', async () => {
  const r = rec[1];
  const T = '4bf92f3577b34da6a3ce929d0e0e4736', P = '00f067aa0ba902b7';
  for (const [state, pad] of [['rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', 1], ['k=' + 'v'.repeat(510), 300_000]] as const) {
    r.got.length = 0;
    const base = recv.spans().length;
    const before = await freshStats(agent!);
    assert.equal(await three(`http://127.0.0.1:${svc.b!.port}/users/0`, `http://127.0.0.1:${r.port}`, 7, pad,
      { traceparent: `00-${T}-${P}-01`, tracestate: state }), '200 0');
    assert.equal(r.got.length, 1);
    const got = r.got[0];
    const all = await spansUntil((x) => x.slice(base).some((s) => s.kind === 3 && s.attributes['rpc.system.name'] === 'grpc'), 'the gRPC client span');
    const gc = all.slice(base).filter((s) => s.kind === 3 && s.attributes['rpc.system.name'] === 'grpc');
    assert.equal(gc.length, 1);
    assert.equal(gc[0].traceId, T, 'the incoming trace goes on');
    assert.deepEqual(got.headers.filter(([k]) => k === 'traceparent').map(([, v]) => v), [`00-${T}-${gc[0].spanId}-01`]);
    assert.deepEqual(got.headers.filter(([k]) => k === 'tracestate').map(([, v]) => v), [state]);
    assert.deepEqual(got.headers.slice(-2).map(([k]) => k), ['traceparent', 'tracestate']);
    const strip = (h: [string, string][]) => h.filter(([k]) => k !== 'traceparent' && k !== 'tracestate' && k !== ':authority');
    const b = baseline.get(pad)!;
    assert.deepEqual(strip(got.headers), strip(b.headers));
    assert.ok(got.body.equals(b.body), `body differs (${got.body.length} vs ${b.body.length} bytes)`);
    const after = await waitForStats(agent!, (x) => d(x, before, 'propInjected') >= 1 && (x.spans['hyper-h1-client']?.propInjected ?? 0) - (before.spans['hyper-h1-client']?.propInjected ?? 0) >= 1);
    assert.equal(d(after, before, 'propInjected'), 1, JSON.stringify(h2(after)));
    assert.equal(d(after, before, 'propStateInjected'), 1);
    assert.equal(d(after, before, 'propLostSync'), 0);
    const h1 = (x: AgentStats, k: string) => x.spans['hyper-h1-client']?.[k] ?? 0;
    assert.equal(h1(after, 'propStateInjected') - h1(before, 'propStateInjected'), 1, 'the HTTP/1 leg to B carried it too');
  }
});

test('16 requests to A at once: no span gets a wrong parent; what cannot be told apart goes out unchanged, and every HEADERS frame is counted once', async () => {
  const N = 16;
  const before = await freshStats(agent!);
  const base = recv.spans().length;
  const answers = await Promise.all(Array.from({ length: N }, (_, i) =>
    three(`http://127.0.0.1:${svc.b!.port}/users/${300 + i}`, `http://127.0.0.1:${svc.c!.port}`, i)));
  assert.deepEqual(answers, Array(N).fill('200 0'));
  const of = (all: ReceivedSpan[], k: 'a' | 'b' | 'c') => all.slice(base).filter((s) => s.resource['process.executable.path'] === exe[k]);
  const all = await spansUntil((x) => of(x, 'a').length === 3 * N && of(x, 'b').length === N && of(x, 'c').length === N, `${5 * N} spans`);
  const byId = new Map(all.slice(base).map((s) => [s.spanId, s]));
  const tally = { b: { right: 0, wrong: 0, root: 0 }, c: { right: 0, wrong: 0, root: 0 } };
  for (const s of of(all, 'b')) {
    if (s.parentSpanId === '') { tally.b.root++; continue; }
    const p = byId.get(s.parentSpanId);
    const ok = p && p.kind === 3 && p.traceId === s.traceId && p.resource['process.executable.path'] === exe.a &&
      String(p.attributes['url.full']).endsWith(String(s.attributes['url.path']));
    if (ok) tally.b.right++; else tally.b.wrong++;
  }
  for (const s of of(all, 'c')) {
    if (s.parentSpanId === '') { tally.c.root++; continue; }
    const p = byId.get(s.parentSpanId);
    const gp = p ? byId.get(p.parentSpanId) : undefined;
    const ok = p && p.kind === 3 && p.attributes['rpc.system.name'] === 'grpc' && p.traceId === s.traceId &&
      gp && gp.kind === 2 && gp.resource['process.executable.path'] === exe.a && gp.traceId === s.traceId;
    if (ok) tally.c.right++; else tally.c.wrong++;
  }
  const after = await freshStats(agent!);
  const outcomes = Object.fromEntries(Object.keys(h2(after)).filter((k) => k.startsWith('prop')).map((k) => [k, d(after, before, k)]));
  console.log(`three services, ${N} at once: B ${JSON.stringify(tally.b)}, C ${JSON.stringify(tally.c)}; h2c outcomes ${JSON.stringify(outcomes)}`);
  assert.equal(tally.b.wrong, 0);
  assert.equal(tally.c.wrong, 0);
  // Every request's HEADERS frame was decided exactly once (propSpans is a span count, not an outcome).
  const decided = Object.entries(outcomes).filter(([k]) => k !== 'propSpans' && k !== 'propNotPlaintext').reduce((n, [, v]) => n + v, 0);
  assert.equal(decided, N, JSON.stringify(outcomes));
  assert.equal(outcomes.propInjected, tally.c.right, 'every inserted header gave C its parent');
  assert.equal(outcomes.propLostSync, 0);
  assert.equal(outcomes.propNoEntry, 0);
  const h1 = (x: AgentStats, k: string) => (x.spans['hyper-h1-client']?.[k] ?? 0) - (before.spans['hyper-h1-client']?.[k] ?? 0);
  assert.equal(h1(after, 'propInjected'), tally.b.right);
});

// End to end: outgoing traceparent on HTTP/2 (src/propagation, h2c path)
// for reqwest 0.12 over h2c (prior knowledge), checked from the receiving
// side: Node h2 servers record each request's header list (as decoded from
// HPACK) and body. Large and streamed bodies arrive byte for byte; TLS
// (ALPN h2) and an own traceparent go out unchanged, each counted. The
// service runs in a cgroup of its own (the socket program attaches there).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { testPki } from '../helpers/tls';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { serviceBinary, attachAgent, freshStats, Service, RunningAgent, AgentStats, makeTestCgroup, startServiceInCgroup, removeTestCgroup, propagationAttached } from '../helpers/procs';

interface Got { headers: [string, string][]; body: Buffer }

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent | undefined;
let cgroup = '';
let h2c: http2.Http2Server;
let h2s: http2.Http2SecureServer;
let h2cPort = 0;
let h2sPort = 0;
const got: Got[] = [];

function record(stream: http2.ServerHttp2Stream, raw: string[]): void {
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i], raw[i + 1]]);
  const parts: Buffer[] = [];
  stream.on('data', (d: Buffer) => parts.push(d));
  stream.on('end', () => {
    got.push({ headers, body: Buffer.concat(parts) });
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  stream.on('error', () => { /* the client went away */ });
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

before(async () => {
  h2c = http2.createServer();
  h2c.on('stream', (s: http2.ServerHttp2Stream, _h: unknown, _f: number, raw: string[]) => record(s, raw));
  await new Promise<void>((r) => h2c.listen(0, '127.0.0.1', r));
  h2cPort = (h2c.address() as AddressInfo).port;
  const pki = testPki();
  h2s = http2.createSecureServer({ key: pki.serverKey, cert: pki.serverCert, allowHTTP1: false });
  h2s.on('stream', (s: http2.ServerHttp2Stream, _h: unknown, _f: number, raw: string[]) => record(s, raw));
  await new Promise<void>((r) => h2s.listen(0, '127.0.0.1', r));
  h2sPort = (h2s.address() as AddressInfo).port;
  cgroup = makeTestCgroup('h2prop');
  svc = await startServiceInCgroup(cgroup, serviceBinary('reqwest12-client'));
  recv = await startOtlpReceiver({ grpc: false, http: true });
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'caller']);
  await propagationAttached(agent);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => h2c?.close(r));
  await new Promise((r) => h2s?.close(r));
  removeTestCgroup(cgroup);
  assert.equal(code, 0, agent?.stderr.text);
});

async function call(q: Record<string, string | number>, headers: Record<string, string> = {}): Promise<string[]> {
  const qs = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString();
  const res = await fetch(`http://127.0.0.1:${svc.port}/call?${qs}`, { headers });
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n');
}

const h2 = (a: AgentStats) => a.spans['h2-client'] ?? {};
const d = (x: AgentStats, y: AgentStats, k: string) => (h2(x)[k] ?? 0) - (h2(y)[k] ?? 0);

async function clientSpanOf(url: string): Promise<ReceivedSpan> {
  const end = Date.now() + 15_000;
  for (;;) {
    const s = recv.spans().find((x) => x.kind === 3 && x.attributes['url.full'] === url);
    if (s) return s;
    if (Date.now() > end) throw new Error(`no CLIENT span for ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One call; what arrived; the exported CLIENT span; the counters' change. */
async function one(url: string, q: Record<string, string | number>, headers: Record<string, string> = {}) {
  got.length = 0;
  recv.clear();
  const before = await freshStats(agent!);
  assert.deepEqual(await call({ url, ...q }, headers), ['200']);
  assert.equal(got.length, 1);
  const span = await clientSpanOf(url);
  const after = await freshStats(agent!);
  const handler = recv.spans().find((s) => s.kind === 2 && s.spanId === span.parentSpanId);
  assert.ok(handler, 'the CLIENT span is a child of the handler span');
  return { got: got[0], span, handler: handler!, delta: (k: string) => d(after, before, k), after };
}

const tps = (g: Got) => g.headers.filter(([k]) => k === 'traceparent').map(([, v]) => v);

test('reqwest over h2c: traceparent = (the handler\'s trace id, the exported CLIENT span\'s id), the last field; nothing else added', async () => {
  const r = await one(`http://127.0.0.1:${h2cPort}/get?x=1`, { h2c: 1 });
  assert.deepEqual(tps(r.got), [`00-${r.span.traceId}-${r.span.spanId}-01`]);
  assert.equal(r.span.traceId, r.handler.traceId);
  assert.equal(r.got.headers[r.got.headers.length - 1][0], 'traceparent');
  assert.deepEqual(r.got.headers.map(([k]) => k).filter((k) => k.startsWith(':')).sort(), [':authority', ':method', ':path', ':scheme']);
  assert.equal(r.got.body.length, 0);
  assert.equal(r.delta('propInjected'), 1, JSON.stringify(h2(r.after)));
  assert.equal(r.delta('propSpans'), 1);
});

test('reqwest over h2c: a 300 kB body and a 100 kB streamed body arrive byte-identical; the header exact', async () => {
  for (const [kind, n] of [['body', 300_000], ['chunked', 100_000]] as const) {
    const r = await one(`http://127.0.0.1:${h2cPort}/post?n=${n}`, { h2c: 1, [kind]: n });
    assert.deepEqual(tps(r.got), [`00-${r.span.traceId}-${r.span.spanId}-01`]);
    assert.equal(r.got.body.length, n);
    assert.ok(r.got.body.equals(pattern(n)), 'body byte for byte');
    assert.equal(r.delta('propInjected'), 1, JSON.stringify(h2(r.after)));
    assert.equal(r.delta('propLostSync'), 0);
  }
});

test('unchanged and counted: TLS (ALPN h2) and an own traceparent', async () => {
  const t = await one(`https://127.0.0.1:${h2sPort}/tls`, {});
  assert.deepEqual(tps(t.got), []);
  assert.equal(t.delta('propNotPlaintext'), 1, JSON.stringify(h2(t.after)));
  assert.equal(t.delta('propInjected'), 0);
  const o = await one(`http://127.0.0.1:${h2cPort}/own`, { h2c: 1, own_tp: 1 });
  assert.deepEqual(tps(o.got), ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
  assert.equal(o.delta('propPresent'), 1, JSON.stringify(h2(o.after)));
  assert.equal(o.delta('propInjected'), 0);
});

test('tracestate on h2c: the incoming request\'s tracestate goes out exactly (one HPACK literal after the traceparent), for 1-, 2- and 3-byte length prefixes and up to 512 bytes; a 300 kB body still byte-identical', async () => {
  const T = '4bf92f3577b34da6a3ce929d0e0e4736', P = '00f067aa0ba902b7';
  const cases: { state: string; want: string | undefined; q?: Record<string, number> }[] = [
    { state: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', want: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' },
    { state: '  vendor1=opaque value_1 , x@y=z  ', want: 'vendor1=opaque value_1 , x@y=z' },
    { state: 'k=' + 'v'.repeat(124), want: 'k=' + 'v'.repeat(124) },	// 126: 1-byte length
    { state: 'k=' + 'v'.repeat(125), want: 'k=' + 'v'.repeat(125) },	// 127: 0x7f 0x00
    { state: 'k=' + 'v'.repeat(252), want: 'k=' + 'v'.repeat(252) },	// 254: 0x7f 0x7f
    { state: 'k=' + 'v'.repeat(253), want: 'k=' + 'v'.repeat(253) },	// 255: 0x7f 0x80 0x01
    { state: 'k=' + 'v'.repeat(510), want: 'k=' + 'v'.repeat(510) },	// 512
    { state: 'k=' + 'v'.repeat(511), want: undefined },			// 513: not carried (not filed at parse)
    { state: 'big=1', want: 'big=1', q: { body: 300_000 } },
  ];
  let injected = 0, carried = 0;
  for (const c of cases) {
    const url = `http://127.0.0.1:${h2cPort}/ts?n=${c.state.length}${c.q ? '&b=1' : ''}`;
    const r = await one(url, { h2c: 1, ...(c.q ?? {}) }, { traceparent: `00-${T}-${P}-01`, tracestate: c.state });
    assert.equal(r.span.traceId, T, 'the incoming trace goes on');
    assert.equal(r.handler.parentSpanId, P);
    assert.deepEqual(tps(r.got), [`00-${T}-${r.span.spanId}-01`]);
    const states = r.got.headers.filter(([k]) => k === 'tracestate').map(([, v]) => v);
    const names = r.got.headers.map(([k]) => k);
    if (c.want === undefined) {
      assert.deepEqual(states, []);
      assert.equal(names[names.length - 1], 'traceparent');
    } else {
      assert.deepEqual(states, [c.want], 'one tracestate, exactly the incoming value');
      assert.deepEqual(names.slice(-2), ['traceparent', 'tracestate']);
      carried++;
    }
    if (c.q?.body) {
      assert.equal(r.got.body.length, c.q.body);
      assert.ok(r.got.body.equals(pattern(c.q.body)), 'body byte for byte');
    }
    assert.equal(r.delta('propInjected'), 1, JSON.stringify(h2(r.after)));
    assert.equal(r.delta('propStateInjected'), c.want === undefined ? 0 : 1);
    assert.equal(r.delta('propLostSync'), 0);
    injected++;
  }
  const all = await freshStats(agent!);
  console.log(`h2c tracestate: ${carried} of ${injected} injected requests carried one; counters ${JSON.stringify(Object.fromEntries(Object.entries(h2(all)).filter(([k]) => k.startsWith('prop'))))}`);
});

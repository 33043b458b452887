// End to end: outgoing W3C trace context inserted at the socket (sock_ops +
// sk_msg, src/propagation) into the HTTP/1 requests a traced reqwest 0.12
// service makes, checked from the receiving side: a raw TCP server records
// every request byte for byte. The service runs in a cgroup of its own made
// here (the socket program attaches to the traced process's cgroup only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { testPki } from '../helpers/tls';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { serviceBinary, attachAgent, runAgentSync, freshStats, waitForStats, Service, RunningAgent, AgentStats, makeTestCgroup, startServiceInCgroup, removeTestCgroup, propagationAttached } from '../helpers/procs';

/** One request as it arrived: the head's bytes and the body's bytes exactly as sent (chunk framing included). */
interface Received { head: string; body: Buffer; decoded: Buffer }

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent | undefined;
let raw: net.Server;
let rport = 0;
let tls: https.Server;
let tlsPort = 0;
let cgroup = '';
const received: Received[] = [];

/** Parses HTTP/1 requests off a connection (Content-Length or chunked bodies); answers each, then closes. */
function recordingServer(): net.Server {
  return net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const he = buf.indexOf('\r\n\r\n');
      if (he < 0) return;
      const head = buf.subarray(0, he + 4).toString('latin1');
      const rest = buf.subarray(he + 4);
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      let bodyLen = -1;
      let decoded = Buffer.alloc(0);
      if (cl) {
        if (rest.length < Number(cl[1])) return;
        bodyLen = Number(cl[1]);
        decoded = rest.subarray(0, bodyLen);
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        let at = 0;
        const parts: Buffer[] = [];
        for (;;) {
          const le = rest.indexOf('\r\n', at);
          if (le < 0) return;
          const n = parseInt(rest.subarray(at, le).toString('latin1'), 16);
          if (rest.length < le + 2 + n + 2) return;
          parts.push(rest.subarray(le + 2, le + 2 + n));
          at = le + 2 + n + 2;
          if (n === 0) break;
        }
        bodyLen = at;
        decoded = Buffer.concat(parts);
      } else {
        bodyLen = 0;
      }
      received.push({ head, body: Buffer.from(rest.subarray(0, bodyLen)), decoded: Buffer.from(decoded) });
      buf = Buffer.alloc(0);
      sock.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
    });
    sock.on('error', () => { /* the client went away */ });
  });
}

/** The fixture's body pattern (apps/reqwest12-client body_bytes). */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

async function call(q: Record<string, string | number>, headers: Record<string, string> = {}): Promise<string[]> {
  const qs = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString();
  const res = await fetch(`http://127.0.0.1:${svc.port}/call?${qs}`, { headers });
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n');
}

const TP_LINE = /\r\ntraceparent: (00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2}))\r\n/g;
const withoutTp = (head: string) => head.replace(/\r\ntraceparent: [^\r]*\r\n/, '\r\n');
const clientSpans = (): ReceivedSpan[] => recv.spans().filter((s) => s.kind === 3);
const d = (a: AgentStats, b: AgentStats, k: string) => (a.spans['hyper-h1-client']?.[k] ?? 0) - (b.spans['hyper-h1-client']?.[k] ?? 0);
const hits = (s: AgentStats, probe: string) => s.probes.find((p) => p.probe === probe)?.hits ?? 0;

/** What the same calls send without the agent: the baseline the traced requests are compared with. */
const baseline = new Map<string, Received>();
const CASES: Record<string, Record<string, string | number>> = {
  get: {},
  large: { body: 300_000 },
  chunked: { chunked: 100_000 },
};

before(async () => {
  raw = recordingServer();
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  rport = (raw.address() as AddressInfo).port;
  const pki = testPki();
  tls = https.createServer({ key: pki.serverKey, cert: pki.serverCert }, (_req, res) => res.end('secure'));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  tlsPort = (tls.address() as AddressInfo).port;
  cgroup = makeTestCgroup('test');
  svc = await startServiceInCgroup(cgroup, serviceBinary('reqwest12-client'));
  // Without the agent first (each call is a new connection: the server closes it).
  for (const [name, q] of Object.entries(CASES)) {
    received.length = 0;
    assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/${name}?x=1`, ...q }), ['200']);
    assert.equal(received.length, 1);
    baseline.set(name, received[0]);
  }
  recv = await startOtlpReceiver({ grpc: false, http: true });
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'caller']);
  await propagationAttached(agent);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => raw?.close(r));
  await new Promise((r) => tls?.close(r));
  removeTestCgroup(cgroup);
  assert.equal(code, 0, agent?.stderr.text);
});

test('start-up line and stats: the socket path is active, and why; the user-memory write is refused (lockdown)', () => {
  const text = agent!.stderr.text;
  assert.match(text, /trace context propagation: socket-level insertion \(sk_msg\): sock_ops and sk_msg programs load/);
  assert.match(text, /user-memory write: bpf_probe_write_user refused by the verifier/);
  assert.match(text, new RegExp(`sock_ops attached to cgroup /otel-rust-agent-test-${process.pid} \\(process ${svc.pid}\\)`));
});

test('inspect names the path this kernel allows and why (the write-user path refused), for a pid and an executable', () => {
  // (A running agent's own report is read from /run/otel-rust-agent; the test
  // agent writes its stats elsewhere, so this is the kernel's answer.)
  const live = runAgentSync(['inspect', String(svc.pid)]);
  assert.equal(live.code, 0, live.stderr);
  assert.match(live.stdout, /^propagation socket-level insertion \(sk_msg\): sock_ops and sk_msg programs load: .*; user-memory write: bpf_probe_write_user refused by the verifier/m);
  const exe = runAgentSync(['inspect', serviceBinary('reqwest12-client'), '--json']);
  assert.equal(exe.code, 0, exe.stderr);
  const j = JSON.parse(exe.stdout);
  assert.equal(j.propagation.path, 'sk_msg');
  assert.equal(j.propagation.userWrite, 'refused');
  assert.equal(j.propagation.clientProbes, true);
});

test('GET from the handler: traceparent = (the handler server span\'s trace id, the exported CLIENT span\'s id), right after the request line; nothing else changed', async () => {
  recv.clear();
  received.length = 0;
  const before = await freshStats(agent!);
  assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/get?x=1` }), ['200']);
  await recv.waitForSpans(2, 15_000);
  assert.equal(received.length, 1);
  const head = received[0].head;
  const tps = [...head.matchAll(TP_LINE)];
  assert.equal(tps.length, 1, head);
  assert.ok(head.startsWith(`GET /get?x=1 HTTP/1.1\r\ntraceparent: ${tps[0][1]}\r\n`), head);
  assert.equal(withoutTp(head), baseline.get('get')!.head);
  const [client] = clientSpans();
  const server = recv.spans().find((s) => s.kind === 2)!;
  assert.equal(server.attributes['url.path'], '/call');
  assert.equal(tps[0][2], client.traceId);
  assert.equal(tps[0][3], client.spanId);
  assert.equal(tps[0][4], '01');
  assert.equal(client.traceId, server.traceId);
  assert.equal(client.parentSpanId, server.spanId);
  const after = await waitForStats(agent!, (s) => d(s, before, 'propSpans') >= 1);
  assert.equal(d(after, before, 'propInjected'), 1);
  assert.equal(d(after, before, 'propSpans'), 1);
  // 4 hits per reqwest 0.12 call: execute_request, encode, parse, and hyper-util's origin_form
  // (issue8f: there for hyper used directly; a reqwest call is skipped there).
  assert.equal(hits(after, 'reqwest_execute') - hits(before, 'reqwest_execute'), 1);
  assert.equal(hits(after, 'hyper_util_origin_form') - hits(before, 'hyper_util_origin_form'), 1);
  assert.equal(hits(after, 'client_encode') - hits(before, 'client_encode'), 1);
  assert.equal(hits(after, 'client_parse') - hits(before, 'client_parse'), 1);
});

test('large (300 kB, Content-Length) and chunked (100 kB) bodies arrive byte-identical to the run without the agent; only the header line is added', async () => {
  for (const name of ['large', 'chunked']) {
    received.length = 0;
    recv.clear();
    assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/${name}?x=1`, ...CASES[name] }), ['200']);
    await recv.waitForSpans(2, 15_000);
    assert.equal(received.length, 1);
    const got = received[0], base = baseline.get(name)!;
    assert.ok(got.body.equals(base.body), `${name}: body differs from the run without the agent`);
    assert.ok(got.decoded.equals(pattern(name === 'large' ? 300_000 : 100_000)), `${name}: body is not the fixture's pattern`);
    assert.equal(withoutTp(got.head), base.head);
    const [tp] = [...got.head.matchAll(TP_LINE)];
    assert.ok(tp, got.head);
    const [client] = clientSpans();
    assert.equal(tp[3], client.spanId);
    assert.equal(tp[2], client.traceId);
  }
});

test('hyper-util\'s legacy client used directly (no reqwest): the exact traceparent (the server span\'s trace, the CLIENT span\'s id), the incoming tracestate, a 300 kB body byte-identical', async () => {
  recv.clear();
  received.length = 0;
  const before = await freshStats(agent!);
  // Two sequential GETs (two connections: the recording server closes each).
  assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/direct?x=1`, mode: 'hyper', n: 2 }), ['200', '200']);
  await recv.waitForSpans(3, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(received.length, 2);
  const server = recv.spans().find((s) => s.kind === 2)!;
  const cs = clientSpans();
  assert.equal(cs.length, 2);
  const ids = new Set<string>();
  for (const r of received) {
    const tps = [...r.head.matchAll(TP_LINE)];
    assert.equal(tps.length, 1, r.head);
    assert.ok(r.head.startsWith(`GET /direct?x=1 HTTP/1.1\r\ntraceparent: ${tps[0][1]}\r\n`), r.head);
    assert.equal(tps[0][2], server.traceId, 'trace id = the server span\'s');
    const client = cs.find((c) => c.spanId === tps[0][3]);
    assert.ok(client, `the header's span id ${tps[0][3]} is an exported CLIENT span`);
    assert.equal(client.traceId, server.traceId);
    assert.equal(client.parentSpanId, server.spanId, 'parent = the handler\'s server span');
    assert.equal(tps[0][4], '01');
    assert.deepEqual(r.body, Buffer.alloc(0));
    ids.add(tps[0][3]);
  }
  assert.equal(ids.size, 2);
  // A POST body (Content-Length) and an incoming tracestate.
  received.length = 0;
  recv.clear();
  const T = '4bf92f3577b34da6a3ce929d0e0e4736', P = '00f067aa0ba902b7';
  assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/direct-large?x=1`, mode: 'hyper', body: 300_000 },
    { traceparent: `00-${T}-${P}-01`, tracestate: 'rojo=00f067aa0ba902b7' }), ['200']);
  await recv.waitForSpans(2, 15_000);
  assert.equal(received.length, 1);
  const got = received[0];
  assert.ok(got.decoded.equals(pattern(300_000)), 'body is not the fixture\'s pattern');
  assert.equal(got.body.length, 300_000);
  const [tp] = [...got.head.matchAll(TP_LINE)];
  const [client] = clientSpans();
  const srv = recv.spans().find((s) => s.kind === 2)!;
  assert.equal(tp[1], `00-${T}-${client.spanId}-01`);
  assert.equal(client.parentSpanId, srv.spanId);
  assert.equal(srv.parentSpanId, P);
  assert.ok(got.head.startsWith(`POST /direct-large?x=1 HTTP/1.1\r\ntraceparent: ${tp[1]}\r\ntracestate: rojo=00f067aa0ba902b7\r\n`), got.head);
  const after = await waitForStats(agent!, (s) => d(s, before, 'propSpans') >= 3);
  assert.equal(d(after, before, 'propInjected'), 3);
  assert.equal(d(after, before, 'propSpans'), 3);
  assert.equal(d(after, before, 'propStateInjected'), 1);
  assert.equal(d(after, before, 'propNoContext'), 0);
  assert.equal(d(after, before, 'propAmbiguous'), 0);
  // 3 hits per request: origin_form (caller's task), encode, parse; no reqwest probe.
  assert.equal(hits(after, 'hyper_util_origin_form') - hits(before, 'hyper_util_origin_form'), 3);
  assert.equal(hits(after, 'reqwest_execute') - hits(before, 'reqwest_execute'), 0);
  assert.equal(hits(after, 'client_encode') - hits(before, 'client_encode'), 3);
});

test('unsafe or unknown: TLS and an own traceparent go out unchanged, each counted; a spawned task\'s call carries the handler span\'s context (BPF lineage)', async () => {
  const before = await freshStats(agent!);
  // TLS: the socket sees ciphertext.
  assert.deepEqual(await call({ url: `https://127.0.0.1:${tlsPort}/secure` }), ['200']);
  received.length = 0;
  assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/own?x=1`, own_tp: 1 }), ['200']);
  assert.equal(received.length, 1);
  assert.deepEqual([...received[0].head.matchAll(TP_LINE)].map((m) => m[1]), ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
  received.length = 0;
  recv.clear();
  assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/spawned?x=1`, mode: 'spawn' }), ['200']);
  assert.equal(received.length, 1);
  // The spawned task's call: linked at the spawn probe (src/propagation/context.h).
  await recv.waitForSpans(2 + 2, 15_000);
  const spawnedSpan = clientSpans().find((x) => String(x.attributes['url.full']).endsWith('/spawned?x=1'))!;
  const spawnServer = recv.spans().find((x) => x.kind === 2 && String(x.attributes['url.query']).includes('mode=spawn'))!;
  assert.ok(spawnedSpan && spawnServer);
  assert.deepEqual([...received[0].head.matchAll(TP_LINE)].map((m) => m[1]), [`00-${spawnServer.traceId}-${spawnedSpan.spanId}-01`]);
  assert.equal(spawnedSpan.parentSpanId, spawnServer.spanId);
  const after = await waitForStats(agent!, (s) => d(s, before, 'propNotPlaintext') >= 1 && d(s, before, 'propPresent') >= 1 && d(s, before, 'propInjected') >= 1);
  assert.equal(d(after, before, 'propInjected'), 1);
  assert.equal(d(after, before, 'propNotPlaintext'), 1);
  assert.equal(d(after, before, 'propPresent'), 1);
  assert.equal(d(after, before, 'propNoContext'), 0);
  // reqwest's calls pass hyper-util's origin_form too: skipped there (filed at execute_request), never twice.
  const of = (st: AgentStats) => st.probes.find((p) => p.probe === 'hyper_util_origin_form')!;
  assert.equal(of(after).hits - of(before).hits, 3, 'all three reach origin_form (the TLS one is skipped by its https scheme)');
  assert.equal(of(after).noEntry - of(before).noEntry, 2, 'both were reqwest calls filed already');
  assert.equal(of(after).badLayout - of(before).badLayout, 0);
  console.log(`propagation outcomes: ${JSON.stringify(Object.fromEntries(Object.entries(after.spans['hyper-h1-client']).filter(([k]) => k.startsWith('prop'))))}`);
});

test('tracestate: the incoming request\'s tracestate goes out exactly (OWS trimmed), right after the traceparent, up to 512 bytes; longer, or without a traceparent, it is not carried', async () => {
  const T = '4bf92f3577b34da6a3ce929d0e0e4736', P = '00f067aa0ba902b7';
  const incoming = `00-${T}-${P}-01`;
  const long512 = 'k=' + 'v'.repeat(510);
  const cases: { state: string; want: string | undefined; tp?: boolean }[] = [
    { state: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', want: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' },
    { state: '  vendor1=opaque value_1 , x@y=z  ', want: 'vendor1=opaque value_1 , x@y=z' },
    { state: long512, want: long512 },
    { state: long512 + 'w', want: undefined },
    { state: 'a=1', want: undefined, tp: false },
  ];
  const before = await freshStats(agent!);
  for (const c of cases) {
    received.length = 0;
    recv.clear();
    const headers: Record<string, string> = { tracestate: c.state };
    if (c.tp !== false) headers.traceparent = incoming;
    assert.deepEqual(await call({ url: `http://127.0.0.1:${rport}/get?x=1` }, headers), ['200']);
    await recv.waitForSpans(2, 15_000);
    assert.equal(received.length, 1);
    const head = received[0].head;
    const tps = [...head.matchAll(TP_LINE)];
    assert.equal(tps.length, 1, head);
    const [client] = clientSpans();
    const server = recv.spans().find((s) => s.kind === 2)!;
    assert.equal(tps[0][1], `00-${client.traceId}-${client.spanId}-01`);
    assert.equal(client.parentSpanId, server.spanId);
    if (c.tp !== false) {
      assert.equal(client.traceId, T, 'the incoming trace goes on');
      assert.equal(server.parentSpanId, P);
    }
    const states = [...head.matchAll(/\r\ntracestate:([^\r]*)\r\n/gi)].map((m) => m[1]);
    if (c.want === undefined) {
      assert.deepEqual(states, [], head);
      assert.equal(withoutTp(head), baseline.get('get')!.head);
    } else {
      assert.deepEqual(states, [` ${c.want}`], 'one tracestate, exactly the incoming value');
      assert.ok(head.startsWith(`GET /get?x=1 HTTP/1.1\r\ntraceparent: ${tps[0][1]}\r\ntracestate: ${c.want}\r\n`), head);
      assert.equal(withoutTp(head.replace(/\r\ntracestate: [^\r]*\r\n/, '\r\n')), baseline.get('get')!.head, 'nothing else changed');
    }
  }
  const after = await waitForStats(agent!, (s) => d(s, before, 'propInjected') >= cases.length);
  assert.equal(d(after, before, 'propInjected'), cases.length);
  assert.equal(d(after, before, 'propStateInjected'), cases.filter((c) => c.want !== undefined).length);
  assert.equal(d(after, before, 'propStateLost'), 0);
  assert.equal(d(after, before, 'propStatePresent'), 0);
});

test('a traced downstream continues the trace: the service calling its own axum route gives caller server -> client -> downstream server, one trace', async () => {
  recv.clear();
  assert.deepEqual(await call({ url: `http://127.0.0.1:${svc.port}/` }), ['200']);
  await recv.waitForSpans(3, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const servers = recv.spans().filter((s) => s.kind === 2);
  const outer = servers.find((s) => s.attributes['url.path'] === '/call')!;
  const inner = servers.find((s) => s.attributes['url.path'] === '/')!;
  const [client] = clientSpans();
  assert.ok(outer && inner && client);
  assert.equal(client.traceId, outer.traceId);
  assert.equal(client.parentSpanId, outer.spanId);
  assert.equal(inner.traceId, outer.traceId);
  assert.equal(inner.parentSpanId, client.spanId);
});

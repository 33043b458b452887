// End to end (issue 8e): the outgoing traceparent follows the same lineage
// as the in-process parent links. The fan-out fixture (apps/fanout-service)
// calls a downstream from the handler's task, a tokio::spawn'ed task, a task
// spawned by a spawned task, join!, spawn_blocking + reqwest::blocking and a
// std::thread + reqwest::blocking; the downstream here records the
// traceparent each request arrived with. For every CLIENT span the header
// must be exactly `00-<the server span's trace id>-<the CLIENT span's id>-01`.
//   right:   that header
//   wrong:   a header, but another one                      (must be 0)
//   missing: no header (the kernel side found no context)
// The service runs in a cgroup of its own (the socket program attaches to
// the traced process's cgroup only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats, makeTestCgroup, startServiceInCgroup, removeTestCgroup, propagationAttached } from '../helpers/procs';
import { startLoad } from '../helpers/load';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent | undefined;
let down: http.Server;
let dport = 0;
let cgroup = '';
/** url -> the traceparent headers it arrived with (one per request; '' for none). */
const seen = new Map<string, string[]>();

const FAN_PATTERNS = ['direct', 'spawn', 'spawn2', 'joinA', 'joinB', 'blocking', 'thread'];
type Verdict = 'right' | 'wrong' | 'missing';
type Counts = Record<Verdict, number>;
const hits = (s: AgentStats, probe: string) => s.probes.filter((p) => p.probe === probe).reduce((n, p) => n + p.hits, 0);
const links = (s: AgentStats) => ((s as unknown as { propagation?: { links?: Record<string, number> } }).propagation?.links ?? {});
const h1c = (a: AgentStats, b: AgentStats, k: string) => (a.spans['hyper-h1-client']?.[k] ?? 0) - (b.spans['hyper-h1-client']?.[k] ?? 0);

before(async () => {
  down = http.createServer((req, res) => {
    const tp = req.headers.traceparent;
    const list = seen.get(req.url!) ?? [];
    list.push(Array.isArray(tp) ? tp.join(',') : tp ?? '');
    seen.set(req.url!, list);
    res.end('ok');
  });
  down.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  dport = (down.address() as AddressInfo).port;
  cgroup = makeTestCgroup('lineage');
  svc = await startServiceInCgroup(cgroup, serviceBinary('fanout-service'),
    { FANOUT_DOWNSTREAM: `http://127.0.0.1:${dport}`, FANOUT_WORKERS: '4' });
  recv = await startOtlpReceiver({ grpc: false, http: true });
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'fanout']);
  await propagationAttached(agent);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  down?.closeAllConnections();
  await new Promise((r) => down?.close(r));
  removeTestCgroup(cgroup);
  assert.equal(code, 0, agent?.stderr.text);
});

async function waitForCount(pred: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}: ${recv.spans().length} spans`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Each CLIENT span of `route` requests named `prefix<n>`: the header its
 * wire request carried, against the SERVER span of the request the URL names.
 */
function verdicts(spans: ReceivedSpan[], route: string, prefix: string): { byPattern: Record<string, Counts>; total: Counts; parentMismatch: number } {
  const servers = new Map<string, ReceivedSpan>();
  for (const s of spans) {
    if (s.kind !== 2) continue;
    const m = String(s.attributes['url.path'] ?? '').match(new RegExp(`^/${route}/(${prefix}\\d+)$`));
    if (m) servers.set(m[1], s);
  }
  const total: Counts = { right: 0, wrong: 0, missing: 0 };
  const byPattern: Record<string, Counts> = {};
  let parentMismatch = 0;
  for (const c of spans) {
    if (c.kind !== 3) continue;
    const m = String(c.attributes['url.full'] ?? '').match(new RegExp(`^http://127\\.0\\.0\\.1:${dport}(/([A-Za-z0-9]+)/(${prefix}\\d+))$`));
    if (!m) continue;
    const srv = servers.get(m[3]);
    assert.ok(srv, `the server span of ${m[3]}`);
    const got = seen.get(m[1]) ?? [];
    assert.equal(got.length, 1, `${m[1]} arrived once`);
    const p = (byPattern[m[2]] ??= { right: 0, wrong: 0, missing: 0 });
    const v: Verdict = got[0] === '' ? 'missing' : got[0] === `00-${srv.traceId}-${c.spanId}-01` ? 'right' : 'wrong';
    if (v === 'wrong') console.log(`# wrong: ${m[1]}: ${got[0]}, server ${srv.traceId}/${srv.spanId}, client ${c.traceId}/${c.spanId} parent ${c.parentSpanId}`);
    // The exported span says what went on the wire.
    if (v === 'right' && !(c.traceId === srv.traceId && c.parentSpanId === srv.spanId)) parentMismatch++;
    p[v]++;
    total[v]++;
  }
  return { byPattern, total, parentMismatch };
}

test('traceparent on calls from tokio::spawn (nested twice), spawn_blocking + reqwest::blocking and std::thread: exact from the receiving side, none wrong; 0 probe hits added', async () => {
  const a = agent!;
  // Warm the client pools.
  let load = startLoad({ port: svc.port, connections: 4, total: 16, path: (i) => `/fan/w${i}` });
  let r = await load.done;
  assert.equal(r.statuses[200], 16, JSON.stringify(r));
  await waitForCount(() => recv.spans().filter((s) => s.kind === 3).length >= 16 * 7, 'warm-up spans');

  // Sequential: exact counts.
  let before = await freshStats(a);
  load = startLoad({ port: svc.port, connections: 1, total: 20, path: (i) => `/fan/q${i}` });
  r = await load.done;
  assert.equal(r.statuses[200], 20, JSON.stringify(r));
  await waitForCount(() => verdictsOf('q').n >= 140, 'sequential spans');
  let after = await waitForStats(a, (s) => hits(s, 'client_parse') - hits(before, 'client_parse') >= 140);
  await new Promise((res) => setTimeout(res, 1000));
  after = await freshStats(a);
  const seq = verdicts(recv.spans(), 'fan', 'q');
  const lk = (k: string) => (links(after)[k] ?? 0) - (links(before)[k] ?? 0);
  const d = (p: string) => hits(after, p) - hits(before, p);
  console.log(`# /fan x20 sequential: ${JSON.stringify(seq.total)} ${JSON.stringify(seq.byPattern)}`);
  console.log(`# links: ${JSON.stringify(Object.fromEntries(Object.keys(links(after)).map((k) => [k, lk(k)])))}; propInjected ${h1c(after, before, 'propInjected')}, propNoContext ${h1c(after, before, 'propNoContext')}, propAmbiguous ${h1c(after, before, 'propAmbiguous')}`);
  console.log(`# hits x20: execute ${d('reqwest_execute')}, blocking execute ${d('reqwest_blocking_execute')}, encode ${d('client_encode')}, parse ${d('client_parse')}, spawn ${d('spawn')}, spawn_blocking ${d('spawn_blocking')}`);
  assert.equal(seq.total.wrong, 0);
  for (const p of FAN_PATTERNS) assert.deepEqual(seq.byPattern[p], { right: 20, wrong: 0, missing: 0 }, `${p}: every request's header exact`);
  assert.equal(seq.parentMismatch, 0);
  assert.equal(h1c(after, before, 'propInjected'), 140);
  // The same probes as before this change, hit as often (fanout.test.ts): no probe added.
  assert.equal(d('reqwest_execute'), 140);
  assert.equal(d('reqwest_blocking_execute'), 40);
  assert.equal(d('spawn_blocking'), 20);
  assert.equal(lk('callsByTaskLink'), 60, 'spawn, spawn2, blocking: through a task link');
  assert.equal(lk('callsByThreadLink'), 20, 'thread: through a thread link');
  assert.ok(lk('serverDone') >= 20, 'every response closed its span');

  // Concurrent: 300 requests at concurrency 16.
  before = await freshStats(a);
  load = startLoad({ port: svc.port, connections: 16, total: 300, path: (i) => `/fan/c${i}` });
  r = await load.done;
  assert.equal(r.statuses[200], 300, JSON.stringify(r));
  await waitForCount(() => verdictsOf('c').n >= 2100, 'concurrent spans');
  after = await freshStats(a);
  const con = verdicts(recv.spans(), 'fan', 'c');
  const hc = (k: string) => h1c(after, before, k);
  console.log(`# client counters: blockingUnmatched ${hc('blockingUnmatched')}, blockingUnparsable ${hc('blockingUnparsable')}, callsUnparsable ${hc('callsUnparsable')}, blockingMatched ${hc('blockingMatched')}`);
  console.log(`# /fan x300 at concurrency 16: ${JSON.stringify(con.total)} ${JSON.stringify(con.byPattern)}; propAmbiguous ${h1c(after, before, 'propAmbiguous')}, propNoContext ${h1c(after, before, 'propNoContext')}`);
  assert.equal(con.total.wrong, 0);
  assert.equal(con.parentMismatch, 0);
  // Every URL is unique (its id), so no target is ambiguous: all exact.
  for (const p of FAN_PATTERNS) assert.deepEqual(con.byPattern[p], { right: 300, wrong: 0, missing: 0 }, `${p}: every request's header exact`);
});

test('a pool thread started in one request and serving later ones: a header only for its first request (its span was open), none for the later ones', async () => {
  const a = agent!;
  const before = await freshStats(a);
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`http://127.0.0.1:${svc.port}/pool/p${i}`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'pool 200\n');
  }
  await waitForCount(() => recv.spans().filter((s) => s.kind === 3 && /\/pool\/p\d+$/.test(String(s.attributes['url.full']))).length >= 6, 'pool spans');
  const after = await freshStats(a);
  const v = verdicts(recv.spans(), 'pool', 'p');
  console.log(`# /pool x6: ${JSON.stringify(v.total)}; closedLinks ${(links(after).closedLinks ?? 0) - (links(before).closedLinks ?? 0)}`);
  assert.deepEqual(v.total, { right: 1, wrong: 0, missing: 5 });
  assert.equal(seen.get('/pool/p0')![0].length > 0, true);
});

function verdictsOf(prefix: string): { n: number } {
  const re = new RegExp(`/[A-Za-z0-9]+/${prefix}\\d+$`);
  return { n: recv.spans().filter((s) => s.kind === 3 && re.test(String(s.attributes['url.full'] ?? ''))).length };
}

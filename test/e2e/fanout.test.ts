// End to end (issue 8, item 1): parent links inside tokio. The fanout-service
// fixture makes client calls through every in-process hand-off (direct,
// tokio::spawn, a spawn inside a spawn, join! of two, spawn_blocking with
// reqwest::blocking, a std thread) to a local downstream; each downstream URL
// carries the id of the request it was made for, so every CLIENT span's
// parent is checked against the SERVER span of exactly that request.
//   right: same trace, parent = that server span
//   wrong: a parent, but another one            (must be 0)
//   root:  no parent (counted by the agent as `unparented`)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, waitForStats, Service, RunningAgent, AgentStats } from '../helpers/procs';
import { startLoad } from '../helpers/load';

let recv: OtlpReceiver;
let down: http.Server;
let dport = 0;
let downConnections = 0;

before(async () => {
  down = http.createServer((_req, res) => { res.end('ok'); });
  down.keepAliveTimeout = 120_000; // no idle closes: new connections only when the client opens them
  down.on('connection', () => { downConnections++; });
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  dport = (down.address() as AddressInfo).port;
  recv = await startOtlpReceiver({ grpc: false, http: true });
});

after(async () => {
  await recv?.close();
  down?.closeAllConnections();
  await new Promise((r) => down?.close(r));
});

async function start(env: Record<string, string>): Promise<{ svc: Service; agent: RunningAgent }> {
  const svc = await startService(serviceBinary('fanout-service'), { FANOUT_DOWNSTREAM: `http://127.0.0.1:${dport}`, ...env });
  const agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'fanout']);
  return { svc, agent };
}

async function stop(svc: Service, agent: RunningAgent): Promise<void> {
  const code = await agent.stop();
  await svc.stop();
  assert.equal(code, 0, agent.stderr.text);
}

const hits = (s: AgentStats, probe: string) => s.probes.filter((p) => p.probe === probe).reduce((n, p) => n + p.hits, 0);
/** The agent's thread-creation tracepoint (bpf/process.bpf.c): runs that passed the traced-process filter, events sent, lost. */
interface ThreadState { threadEvents: boolean; threadSpawnHits: number; threadSpawnEvents: number; threadSpawnEventsLost: number }
const threadState = (s: AgentStats) => (s as unknown as { state: ThreadState }).state;
const FAN_PATTERNS = ['direct', 'spawn', 'spawn2', 'joinA', 'joinB', 'blocking', 'thread'];

interface Parenting { right: number; wrong: number; root: number; byPattern: Record<string, { right: number; wrong: number; root: number }>; unmatched: number }

/** Each CLIENT span's parent, checked against the SERVER span of the request its URL names. */
function parenting(spans: ReceivedSpan[], route: string, prefix: string): Parenting {
  const servers = new Map<string, ReceivedSpan>();
  for (const s of spans) {
    if (s.kind !== 2) continue;
    const m = String(s.attributes['url.path'] ?? '').match(new RegExp(`^/${route}/(${prefix}\\d+)$`));
    if (m) servers.set(m[1], s);
  }
  const out: Parenting = { right: 0, wrong: 0, root: 0, byPattern: {}, unmatched: 0 };
  for (const c of spans) {
    if (c.kind !== 3) continue;
    const m = String(c.attributes['url.full'] ?? '').match(new RegExp(`^http://127\\.0\\.0\\.1:${dport}/([A-Za-z0-9]+)/(${prefix}\\d+)$`));
    if (!m) continue;
    const srv = servers.get(m[2]);
    if (!srv) { out.unmatched++; continue; }
    const p = (out.byPattern[m[1]] ??= { right: 0, wrong: 0, root: 0 });
    const verdict = c.parentSpanId === '' ? 'root' : c.parentSpanId === srv.spanId && c.traceId === srv.traceId ? 'right' : 'wrong';
    p[verdict]++;
    out[verdict]++;
  }
  return out;
}

async function waitForCount(pred: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) {
      const all = recv.spans();
      throw new Error(`timed out waiting for ${what}: ${all.length} spans (${all.filter((s) => s.kind === 2).length} server, ${all.filter((s) => s.kind === 3).length} client)`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('multi-thread runtime (4 workers), 1000 requests at concurrency 32, 7 calls each: client spans parented through spawn, nested spawn, join!, spawn_blocking + reqwest::blocking and std::thread::spawn; none wrong; a pool thread gives later calls no parent', async () => {
  const { svc, agent } = await start({ FANOUT_WORKERS: '4' });
  try {
    // Exact spawn-probe hits: /spawns makes 2 + 1 tokio::spawn and 1 spawn_blocking, no calls.
    recv.clear();
    let before = await freshStats(agent);
    let load = startLoad({ port: svc.port, connections: 1, total: 50, path: (i) => `/spawns/s${i}` });
    let r = await load.done;
    assert.equal(r.statuses[200], 50, JSON.stringify(r));
    let after = await waitForStats(agent, (s) => hits(s, 'spawn_blocking') - hits(before, 'spawn_blocking') >= 50 && s.spans['tokio-spawn']?.spawns - (before.spans['tokio-spawn']?.spawns ?? 0) >= 200);
    await new Promise((res) => setTimeout(res, 1500));
    after = await freshStats(agent);
    const spawnHits = hits(after, 'spawn') - hits(before, 'spawn');
    const blockingSpawnHits = hits(after, 'spawn_blocking') - hits(before, 'spawn_blocking');
    console.log(`# /spawns x50: spawn hits ${spawnHits}, spawn_blocking hits ${blockingSpawnHits}`);
    // + 1: axum's task for the load's one connection (spawned from the accept loop, outside any task: a hit, no event).
    assert.equal(spawnHits, 150 + 1);
    assert.equal(blockingSpawnHits, 50);
    const ctxD = (k: string) => (after.spans.context?.[k] ?? 0) - (before.spans.context?.[k] ?? 0);
    assert.equal(ctxD('inheritedTasks'), 200, 'every task spawned in a handler (3 + 1 per request) inherited its span');
    assert.equal(after.spans['tokio-spawn'].spawns - (before.spans['tokio-spawn']?.spawns ?? 0), 200);
    for (const p of after.probes.filter((q) => q.module === 'tokio-spawn')) assert.equal(p.badLayout, 0, `${p.probe}: no bad reads`);

    // Warm the client pools (connections opened now are not counted below).
    load = startLoad({ port: svc.port, connections: 8, total: 64, path: (i) => `/fan/w${i}` });
    r = await load.done;
    assert.equal(r.statuses[200], 64, JSON.stringify(r));
    await waitForCount(() => recv.spans().filter((s) => s.kind === 3).length >= 64 * 7, 'warm-up spans');

    // Sequential requests on one connection: exact hits of the call probes.
    before = await freshStats(agent);
    const conns0 = downConnections;
    load = startLoad({ port: svc.port, connections: 1, total: 20, path: (i) => `/fan/q${i}` });
    r = await load.done;
    assert.equal(r.statuses[200], 20, JSON.stringify(r));
    after = await waitForStats(agent, (s) => hits(s, 'client_parse') - hits(before, 'client_parse') >= 140);
    await new Promise((res) => setTimeout(res, 1500));
    after = await freshStats(agent);
    const d = (p: string) => hits(after, p) - hits(before, p);
    const newConns = downConnections - conns0;
    const forks = threadState(after).threadSpawnHits - threadState(before).threadSpawnHits;
    const forkEvents = threadState(after).threadSpawnEvents - threadState(before).threadSpawnEvents;
    console.log(`# /fan x20 sequential: execute ${d('reqwest_execute')}, blocking execute ${d('reqwest_blocking_execute')}, encode ${d('client_encode')}, parse ${d('client_parse')}, spawn ${d('spawn')}, spawn_blocking ${d('spawn_blocking')}, thread spawns (sched_process_fork) ${forks} (events ${forkEvents}), new downstream connections ${newConns}`);
    assert.equal(threadState(after).threadEvents, true, 'the sched_process_fork tracepoint is attached');
    // One std::thread per request, plus a thread tokio's blocking pool may
    // start for spawn_blocking when none is idle (at most one per request).
    assert.ok(forks >= 20 && forks <= 40, `thread spawns ${forks} within [20, 40]`);
    assert.equal(forkEvents, forks, 'one event per thread made');
    assert.equal(d('reqwest_execute'), 140, '7 async execute_request per request (5 in tasks, 2 on the blocking client\'s runtime thread)');
    assert.equal(d('reqwest_blocking_execute'), 40, '2 blocking calls per request');
    assert.equal(d('client_encode'), 140);
    assert.equal(d('client_parse'), 140);
    assert.equal(d('spawn_blocking'), 20, 'one spawn_blocking per request');
    // bind_inner: 3 spawns of the handler + 2 `forward` tasks of the blocking
    // client's runtime per request, plus hyper-util's own spawns: an
    // `on_idle` task when a connection is not yet ready for reuse (a race
    // with the connection task, at most once per call) and 1-2 per new
    // connection.
    assert.ok(d('spawn') >= 100 && d('spawn') <= 100 + 140 + 2 * newConns, `spawn hits ${d('spawn')} within [100, ${240 + 2 * newConns}]`);

    // The load: 1000 requests, 32 in flight.
    recv.clear();
    before = await freshStats(agent);
    load = startLoad({ port: svc.port, connections: 32, total: 1000, path: (i) => `/fan/r${i}` });
    r = await load.done;
    assert.equal(r.statuses[200], 1000, JSON.stringify({ ...r, errors: r.errors.slice(0, 5) }));
    await waitForCount(() => recv.spans().filter((s) => s.kind === 3 && String(s.attributes['url.full']).match(/\/r\d+$/)).length >= 7000 &&
      recv.spans().filter((s) => s.kind === 2 && String(s.attributes['url.path']).startsWith('/fan/r')).length >= 1000, '8000 spans', 300_000);
    await new Promise((res) => setTimeout(res, 1500));
    after = await freshStats(agent);
    const res = parenting(recv.spans(), 'fan', 'r');
    console.log(`# fan-out 1000 x 7 calls: right ${res.right}, wrong ${res.wrong}, root ${res.root} (unmatched ${res.unmatched})`);
    for (const p of FAN_PATTERNS) console.log(`#   ${p.padEnd(8)} ${JSON.stringify(res.byPattern[p] ?? {})}`);
    const dc = (k: string) => (after.spans.context?.[k] ?? 0) - (before.spans.context?.[k] ?? 0);
    const ts = (k: keyof ThreadState) => Number(threadState(after)[k]) - Number(threadState(before)[k]);
    console.log(`# agent: unparented ${dc('unparented')}, inheritedTasks ${dc('inheritedTasks')}, parentedByLineage ${dc('parentedByLineage')}, ` +
      `threadSpawns ${dc('threadSpawns')}, inheritedThreads ${dc('inheritedThreads')}, parentedByThread ${dc('parentedByThread')}; ` +
      `probe drops ${after.probes.reduce((n, p) => n + p.drops, 0)}, thread event drops ${ts('threadSpawnEventsLost')}; ` +
      `sched_process_fork hits ${ts('threadSpawnHits')} (${(ts('threadSpawnHits') / 1000).toFixed(3)} per request)`);
    const hc = (k: string) => (after.spans['hyper-h1-client']?.[k] ?? 0) - (before.spans['hyper-h1-client']?.[k] ?? 0);
    console.log(`# hyper-h1-client: parentMisses ${hc('parentMisses')}, parentAmbiguous ${hc('parentAmbiguous')}, blockingCalls ${hc('blockingCalls')}, blockingMatched ${hc('blockingMatched')}, blockingAmbiguous ${hc('blockingAmbiguous')}, blockingUnparsable ${hc('blockingUnparsable')}, blockingUnmatched ${hc('blockingUnmatched')}, clientCallsDropped ${dc('clientCallsDropped')}`);
    assert.equal(res.unmatched, 0);
    assert.equal(res.right + res.wrong + res.root, 7000, 'one span per call');
    assert.equal(res.wrong, 0, 'no client span has a wrong parent');
    assert.ok(res.right >= Math.ceil(7000 * 0.999), `>= 99.9% of the 7000 calls have the right parent (${res.right})`);
    // The std thread made in the handler inherits its span (sched_process_fork).
    assert.ok((res.byPattern.thread?.right ?? 0) >= Math.ceil(1000 * 0.999), `std thread calls parented (${JSON.stringify(res.byPattern.thread)})`);
    assert.ok(dc('inheritedThreads') >= 1000, 'every std thread made in a handler inherited its span');
    assert.ok(dc('parentedByThread') >= res.byPattern.thread.right, 'their calls were parented through the thread');
    assert.equal(ts('threadSpawnEventsLost'), 0);
    assert.equal(dc('unparented'), res.root, 'the agent counts every root client span as unparented');

    // A thread that outlives the handler that made it: /pool's worker thread
    // is started by the first /pool request, inside its handler, and serves
    // every later /pool request. Only the first request's call (made while
    // its span is open) gets a parent; the later ones are roots, never the
    // first request's span.
    recv.clear();
    before = await freshStats(agent);
    load = startLoad({ port: svc.port, connections: 1, total: 10, path: (i) => `/pool/p${i}` });
    r = await load.done;
    assert.equal(r.statuses[200], 10, JSON.stringify(r));
    await waitForCount(() => recv.spans().filter((s) => s.kind === 3 && String(s.attributes['url.full']).match(/\/pool\/p\d+$/)).length >= 10 &&
      recv.spans().filter((s) => s.kind === 2 && String(s.attributes['url.path']).startsWith('/pool/p')).length >= 10, '20 pool spans');
    await new Promise((res) => setTimeout(res, 1500));
    after = await freshStats(agent);
    const pool = parenting(recv.spans(), 'pool', 'p');
    console.log(`# pool thread, 10 sequential requests: right ${pool.right}, wrong ${pool.wrong}, root ${pool.root}`);
    assert.equal(pool.unmatched, 0);
    assert.equal(pool.wrong, 0, 'the pool thread never gives the first request\'s span to later calls');
    assert.equal(pool.right, 1, 'the first request\'s own call, made while its span was open');
    assert.equal(pool.root, 9);
    assert.equal(dc('unparented'), 9);
  } finally {
    await stop(svc, agent);
  }
});

test('current-thread runtime, 200 concurrent requests with 2 calls each: every trace has exactly its own 3 spans', async () => {
  const { svc, agent } = await start({ FANOUT_RUNTIME: 'current' });
  try {
    recv.clear();
    const load = startLoad({ port: svc.port, connections: 200, total: 200, path: (i) => `/pair/c${i}` });
    const r = await load.done;
    assert.equal(r.statuses[200], 200, JSON.stringify({ ...r, errors: r.errors.slice(0, 5) }));
    await waitForCount(() => recv.spans().filter((s) => String(s.attributes['url.path'] ?? s.attributes['url.full']).match(/\/c\d+$/)).length >= 600, '600 spans');
    await new Promise((res) => setTimeout(res, 1500));
    const spans = recv.spans().filter((s) => String(s.attributes['url.path'] ?? s.attributes['url.full']).match(/\/c\d+$/));
    assert.equal(spans.length, 600);
    const traces = new Map<string, ReceivedSpan[]>();
    for (const s of spans) { const l = traces.get(s.traceId); if (l) l.push(s); else traces.set(s.traceId, [s]); }
    const res = parenting(spans, 'pair', 'c');
    console.log(`# current-thread 200 x 2 calls: traces ${traces.size}, right ${res.right}, wrong ${res.wrong}, root ${res.root}`);
    assert.equal(traces.size, 200, 'one trace per request');
    for (const [, l] of traces) {
      assert.equal(l.length, 3);
      const server = l.find((s) => s.kind === 2)!;
      assert.ok(server, 'the trace has its server span');
      const id = String(server.attributes['url.path']).split('/')[2];
      const clients = l.filter((s) => s.kind === 3).map((s) => String(s.attributes['url.full']).replace(`http://127.0.0.1:${dport}`, '')).sort();
      assert.deepEqual(clients, [`/pairA/${id}`, `/pairB/${id}`]);
      for (const c of l.filter((s) => s.kind === 3)) assert.equal(c.parentSpanId, server.spanId);
    }
    assert.equal(res.right, 400);
  } finally {
    await stop(svc, agent);
  }
});

test('by executable (--exe): a process found by the scan gets thread links too; 20 sequential /fan requests, every call right', async () => {
  const svc = await startService(serviceBinary('fanout-service'), { FANOUT_DOWNSTREAM: `http://127.0.0.1:${dport}`, FANOUT_WORKERS: '4' });
  const agent = await attachAgent(['--exe', serviceBinary('fanout-service'), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'fanout']);
  try {
    // The scan finds the running process (and files it for thread links) within a scan interval.
    await waitForStats(agent, (s) => (s as unknown as { state: { tracedPidsMapEntries: number } }).state.tracedPidsMapEntries >= 1, 30_000);
    recv.clear();
    const load = startLoad({ port: svc.port, connections: 1, total: 20, path: (i) => `/fan/x${i}` });
    const r = await load.done;
    assert.equal(r.statuses[200], 20, JSON.stringify(r));
    await waitForCount(() => recv.spans().filter((s) => s.kind === 3 && String(s.attributes['url.full']).match(/\/x\d+$/)).length >= 140 &&
      recv.spans().filter((s) => s.kind === 2 && String(s.attributes['url.path']).startsWith('/fan/x')).length >= 20, '160 spans');
    await new Promise((res) => setTimeout(res, 1500));
    const res = parenting(recv.spans(), 'fan', 'x');
    console.log(`# --exe, 20 x 7 calls: right ${res.right}, wrong ${res.wrong}, root ${res.root}; thread ${JSON.stringify(res.byPattern.thread)}`);
    assert.equal(res.wrong, 0);
    assert.equal(res.byPattern.thread?.right, 20, 'std thread calls parented in --exe mode');
    assert.equal(res.right, 140);
  } finally {
    await stop(svc, agent);
  }
});

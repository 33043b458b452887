// Loss is exact: every way a span can be lost is counted, and the counts add
// up to what the client sent and what the collector got.
//
//   sent = exported + lost in the ring + dropped (queue full) + rejected
//
// "Lost in the ring": a request makes a span only when both its events (parse
// and encode, one each per request on hyper 0.14) reach the agent. The BPF
// programs count every event they could not write (drops, per probe), and
// the span builder counts what a lost event leaves behind: a response event
// whose request was lost finds nothing (unmatchedResponses); a request event
// whose response was lost waits until the connection's next request replaces
// it (abandoned) or stays pending. So, exactly,
//   requests lost in the ring = drops(parse) + abandoned + pending + expired
//                             = drops(encode_status) + unmatchedResponses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, waitForStats, AgentStats, RunningAgent } from '../helpers/procs';
import { startLoad } from '../helpers/load';

/** How long the collector is down in the second test (the issue asks for 30 s; the default keeps make test short). */
const DOWN_MS = Number(process.env.LOSS_COLLECTOR_DOWN_S ?? 10) * 1000;

function probe(s: AgentStats, id: string) {
  const p = s.probes.find((x) => x.probe === id);
  assert.ok(p, `probe ${id} in ${JSON.stringify(s.probes)}`);
  return p;
}

interface Accounting {
  ringLost: number;
  spans: number;
  exported: number;
  droppedQueueFull: number;
  rejected: number;
}

/** Checks every identity between the counters, and returns the terms. */
function account(s: AgentStats, sent: number): Accounting {
  const h1 = s.spans['hyper-h1-server'] as unknown as Record<string, number>;
  const parse = probe(s, 'parse');
  const enc = probe(s, 'encode_status');
  // One parse and one encode per request, every hit counted in BPF.
  assert.equal(parse.hits, sent, 'parse hits = requests sent');
  assert.equal(enc.hits, sent, 'encode hits = requests sent');
  assert.equal(parse.badLayout + enc.badLayout, 0);
  assert.equal(parse.events + parse.drops, sent, 'every parse hit is an event written or a drop');
  assert.equal(enc.events + enc.drops, sent, 'every encode hit is an event written or a drop');
  assert.equal(h1.partialHeads, 0);
  assert.equal(h1.unparsable, 0);
  assert.equal(h1.notSampled, 0);
  assert.equal(h1.requests, parse.events, 'every request event read');
  const lostByRequest = parse.drops + h1.abandoned + h1.pending + h1.expired;
  const lostByResponse = enc.drops + h1.unmatchedResponses;
  assert.equal(lostByRequest, lostByResponse, `requests lost in the ring, seen from both events: ${JSON.stringify(h1)}`);
  assert.equal(h1.spans + lostByRequest, sent, 'every request is a span or was lost in the ring');
  const ex = s.export;
  assert.equal(s.filteredSpans, 0);
  assert.equal(ex.submitted, h1.spans, 'every span built reaches the exporter');
  assert.equal(ex.queued, 0);
  assert.equal(ex.lostAtShutdown, 0);
  assert.equal(ex.submitted, ex.exported + ex.droppedQueueFull + ex.rejected, `exporter: ${JSON.stringify(ex)}`);
  assert.equal(ex.dropped, ex.droppedQueueFull + ex.rejected);
  return { ringLost: lostByRequest, spans: h1.spans, exported: ex.exported, droppedQueueFull: ex.droppedQueueFull, rejected: ex.rejected };
}

/** Waits until everything the requests caused has been counted and the exporter holds nothing. */
function settled(sent: number) {
  return (s: AgentStats) => {
    const h1 = s.spans['hyper-h1-server'] as unknown as Record<string, number> | undefined;
    return probe(s, 'parse').hits >= sent && probe(s, 'encode_status').hits >= sent && h1 !== undefined &&
      s.export.submitted === h1.spans && s.export.queued === 0;
  };
}

function uniqueIds(spans: ReceivedSpan[]): number {
  return new Set(spans.map((x) => x.spanId)).size;
}

async function finish(agent: RunningAgent, a: Accounting) {
  const code = await agent.stop();
  assert.equal(code, 0, agent.stderr.text);
  // The agent's own last word says the same.
  const m = /spans: (\d+) spans? built, (\d+) exported(?:, (\d+) dropped \(span queue full\))?(?:, (\d+) rejected by the collector)?[^;\n]*; (?:(\d+) events? lost in the ring buffer|no event lost)/.exec(agent.stderr.text);
  assert.ok(m, agent.stderr.text);
  assert.deepEqual(m.slice(1, 5).map((x) => Number(x ?? 0)), [a.spans, a.exported, a.droppedQueueFull, a.rejected]);
  return Number(m[5] ?? 0);
}

test('a tiny ring, a small queue and a slow, rejecting collector under load: sent = exported + ring + queue + rejected, exactly', async () => {
  // The collector answers each request after 100 ms and rejects 3 spans of
  // each; the queue holds 300 spans; the ring is 32 KiB.
  const recv = await startOtlpReceiver({ grpc: true, http: false, partialReject: 3, answerDelayMs: 100 });
  const svc = await startService(serviceBinary('hyper014-server'));
  let agent: RunningAgent | undefined;
  try {
    agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint, '--ring-size', '32K'],
      { OTEL_BSP_MAX_QUEUE_SIZE: '300', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100', OTEL_BSP_SCHEDULE_DELAY: '50' });
    const load = startLoad({ port: svc.port, connections: 24, total: 15_000 });
    const r = await load.done;
    assert.deepEqual(r.errors, []);
    assert.equal(r.unanswered, 0);
    assert.deepEqual(r.statuses, { 200: r.sent });
    const s = await waitForStats(agent, settled(r.sent), 30_000);
    const a = account(s, r.sent);
    // Each way of losing a span happened, and the four terms add up.
    assert.ok(a.ringLost > 0 && a.droppedQueueFull > 0 && a.rejected > 0 && a.exported > 0, JSON.stringify(a));
    assert.equal(a.exported + a.ringLost + a.droppedQueueFull + a.rejected, r.sent);
    // What the collector got: every span exported or rejected, once.
    const got = recv.spans();
    assert.equal(got.length, a.exported + a.rejected);
    assert.equal(uniqueIds(got), got.length);
    // The collector rejects 3 spans of each request (all of a request of fewer).
    const perRequest = new Map<number, number>();
    for (const x of got) perRequest.set(x.request, (perRequest.get(x.request) ?? 0) + 1);
    assert.equal(perRequest.size, s.export.requests);
    assert.equal(a.rejected, [...perRequest.values()].reduce((n, k) => n + Math.min(3, k), 0));
    assert.equal(recv.requestsCount, s.export.requests);
    const ringDrops = await finish(agent, a);
    assert.equal(ringDrops, probe(s, 'parse').drops + probe(s, 'encode_status').drops);
    process.stderr.write(`# loss: sent ${r.sent} = exported ${a.exported} + ring ${a.ringLost} + queue ${a.droppedQueueFull} + rejected ${a.rejected}\n`);
  } finally {
    await agent?.stop();
    await svc.stop();
    await recv.close();
  }
});

test(`the collector down for ${DOWN_MS / 1000} s and back under steady load: every span exported once or counted as dropped`, async () => {
  let recv = await startOtlpReceiver({ grpc: true, http: false });
  const port = recv.grpcPort;
  const svc = await startService(serviceBinary('hyper014-server'));
  let agent: RunningAgent | undefined;
  const got: ReceivedSpan[] = [];
  try {
    // The queue holds 2000 spans: at 400 requests/s it fills after 5 s of outage.
    agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint],
      { OTEL_BSP_MAX_QUEUE_SIZE: '2000', OTEL_BSP_SCHEDULE_DELAY: '100' });
    const load = startLoad({ port: svc.port, connections: 4, rate: 400 });
    await new Promise((r) => setTimeout(r, 2000));
    got.push(...recv.spans());
    await recv.close();
    const downAt = agent.stderr.text.length;
    await new Promise((r) => setTimeout(r, DOWN_MS));
    recv = await startOtlpReceiver({ grpc: true, http: false, grpcPort: port });
    await new Promise((r) => setTimeout(r, 2000));
    load.stop();
    const r = await load.done;
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.statuses, { 200: r.sent });
    const s = await waitForStats(agent, settled(r.sent), 30_000);
    const a = account(s, r.sent);
    // The default ring keeps up with 400 requests/s on a quiet machine; on a
    // loaded one the agent may be starved long enough to lose a few. Either
    // way every request is accounted for below.
    assert.ok(a.ringLost <= r.sent / 100, `ring lost ${a.ringLost} of ${r.sent}`);
    assert.equal(a.rejected, 0);
    assert.ok(a.droppedQueueFull > 0, `the outage overflowed the queue: ${JSON.stringify(a)}`);
    assert.ok(s.export.failedExports > 0);
    got.push(...recv.spans());
    // A request the collector read just as it went away may have been sent
    // again (its answer was lost): OTLP delivery is at least once.
    assert.equal(uniqueIds(got), a.exported, `collector got ${got.length} spans, ${uniqueIds(got)} distinct`);
    assert.equal(a.exported + a.droppedQueueFull + a.ringLost, r.sent);
    await agent.stderr.wait(/cannot export spans to .*retrying, keeping up to 2000 spans queued/, 1000, downAt);
    await agent.stderr.wait(/span queue full \(2000 spans, collector unreachable\)/, 1000, downAt);
    await agent.stderr.wait(/collector reachable again/, 5000, downAt);
    await finish(agent, a);
    process.stderr.write(`# outage ${DOWN_MS / 1000} s: sent ${r.sent} = exported ${a.exported} + queue ${a.droppedQueueFull}; ${got.length - uniqueIds(got)} sent twice\n`);
  } finally {
    await agent?.stop();
    await svc.stop();
    await recv.close();
  }
});

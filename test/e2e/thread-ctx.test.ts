// End to end: a service that publishes the OpenTelemetry thread context
// (OTEP 4947, `otel_thread_ctx_v1`, written by libotelctx linked statically,
// apps/otelctx-service) around its reqwest calls, and no OpenTelemetry SDK.
// The agent reads the record at reqwest's call probe: the CLIENT span is in
// the record's trace with the record's span as parent, and the traceparent
// it propagates says the same. (Calls without a record: GET /stock; not
// asserted here, see the note of branch issue13b: right after a /call, the
// reqwest probe's by-shape URL scan sometimes takes a stale buffer, a
// pre-existing hyper-h1-client limit this fixture shows.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startServiceCmd, serviceBinary, attachAgent, freshStats, waitForStats, runAgentSync, Service, RunningAgent, AgentStats } from '../helpers/procs';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let inventory: http.Server;
let invPort = 0;
let cgroup = '';
const seen: string[] = [];

before(async () => {
  inventory = http.createServer((req, res) => { seen.push(String(req.headers.traceparent ?? '')); res.end('in stock'); });
  await new Promise<void>((r) => inventory.listen(0, '127.0.0.1', r));
  invPort = (inventory.address() as AddressInfo).port;
  recv = await startOtlpReceiver({ grpc: false, http: true });
  // Its own cgroup: the agent's propagation leaves the root cgroup alone.
  const mount = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  assert.ok(mount, 'a cgroup v2 hierarchy is mounted');
  cgroup = path.join(mount, `otel-rust-agent-tctx-${process.pid}`);
  fs.mkdirSync(cgroup, { recursive: true });
  svc = await startServiceCmd(['sh', '-c', 'echo $$ > "$1/cgroup.procs" && exec "$2"', 'sh', cgroup, serviceBinary('otelctx-service')],
    { INVENTORY_URL: `http://127.0.0.1:${invPort}/items` });
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint, '--service-name', 'tctx']);
  await waitForStats(agent, (s) => (s as unknown as { propagation?: { cgroups: string[] } }).propagation?.cgroups.length === 1);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => inventory?.close(r));
  try { fs.rmdirSync(cgroup); } catch { /* still emptying */ }
  assert.equal(code, 0, agent?.stderr.text);
});

test('inspect locates the otel_thread_ctx_v1 slot of the executable', () => {
  const j = JSON.parse(runAgentSync(['inspect', '--json', serviceBinary('otelctx-service')]).stdout);
  const note = j.context.factNotes.find((n: { module: string }) => n.module === 'thread-ctx');
  assert.equal(note.ok, true, note.text);
  assert.equal(typeof j.context.facts.threadCtxOff, 'number');
  // A binary without the slot says nothing about it.
  const plain = JSON.parse(runAgentSync(['inspect', '--json', serviceBinary('axum08-server')]).stdout);
  assert.equal(plain.context.factNotes.find((n: { module: string }) => n.module === 'thread-ctx'), undefined);
});

test('a reqwest call made while a thread-context record is attached: CLIENT in its trace, its span the parent, on the wire too', async () => {
  const N = 5;
  recv.clear();
  seen.length = 0;
  const before = await freshStats(agent);
  const ids: { t: string; s: string }[] = [];
  for (let i = 0; i < N; i++) {
    const t = crypto.randomBytes(16).toString('hex'), s = crypto.randomBytes(8).toString('hex');
    ids.push({ t, s });
    const r = await fetch(`http://127.0.0.1:${svc.port}/call/${t}/${s}`);
    assert.equal(await r.text(), '200\n');
  }
  const end = Date.now() + 20_000;
  while (recv.spans().length < 2 * N && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  const spans = recv.spans();
  assert.equal(spans.length, 2 * N, JSON.stringify(spans.map((s) => [s.name, s.kind])));
  const clients = spans.filter((s) => s.kind === 3);
  const servers = spans.filter((s) => s.kind === 2);
  for (const { t, s } of ids) {
    const c = clients.filter((x) => x.traceId === t);
    assert.equal(c.length, 1, t);
    assert.equal(c[0].parentSpanId, s);
    assert.equal(c[0].attributes['url.full'], `http://127.0.0.1:${invPort}/items`);
    assert.equal(seen.filter((h) => h === `00-${t}-${c[0].spanId}-01`).length, 1, JSON.stringify(seen));
    // Its SERVER span is a root of its own trace.
    const srv = servers.find((x) => String(x.attributes['url.path']).startsWith(`/call/${t}/`))!;
    assert.equal(srv.parentSpanId, '');
    assert.notEqual(srv.traceId, t);
  }
  assert.equal(seen.length, N);
  const after = await waitForStats(agent, (x: AgentStats) => (x.spans['hyper-h1-client']?.threadCtxParents ?? 0) - (before.spans['hyper-h1-client']?.threadCtxParents ?? 0) >= N);
  const d = (k: string) => (after.spans['hyper-h1-client']?.[k] ?? 0) - (before.spans['hyper-h1-client']?.[k] ?? 0);
  assert.equal(d('threadCtxParents'), N);
  assert.equal(d('threadCtxInvalid'), 0);
  assert.equal(d('threadCtxBadRead'), 0);
  assert.equal(d('manualParents'), 0);
});

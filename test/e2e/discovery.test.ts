// Discovery: one agent traces every process whose executable links a
// supported library, started before or after it, in another mount namespace
// too, and leaves out what an exclude selector names. The include selector
// restricts the agent to this test's own directory, so nothing else on the
// machine (other tests' services included) is ever traced.
//
// Fixtures, all copies of demo-service:
//   alpha    bin/svc-a, before the agent, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES of its own
//   alpha-2  bin/svc-a again (the same file), after the agent: one attachment for both
//   quarantined  bin/svc-a again, before the agent, K8S_NAMESPACE_NAME=quarantine: excluded
//   svc-b    bin/svc-b, after the agent, no service name (named after its executable), downward-API variables
//   gamma    its own copy, private/svc-c, run as mnt/svc-c inside its own mount namespace
//            (unshare -m plus a bind mount: the path does not exist outside it), in a cgroup
//            named as podman names a container's
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, startServiceCmd, serviceBinary, startAgent, rawExchange, waitForStats, Service, RunningAgent } from '../helpers/procs';
import { testCgroups, randomHex, TestCgroups } from '../helpers/cgroup';

let recv: OtlpReceiver;
let agent: RunningAgent;
let dir: string;
let cgroups: TestCgroups | undefined;
const containerId = randomHex(32);
const svc: Record<string, Service> = {};

before(async () => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'discovery-')));
  for (const d of ['bin', 'private', 'mnt']) fs.mkdirSync(path.join(dir, d));
  const src = serviceBinary('demo-service');
  for (const f of ['bin/svc-a', 'bin/svc-b', 'private/svc-c']) {
    fs.copyFileSync(src, path.join(dir, f));
    fs.chmodSync(path.join(dir, f), 0o755);
  }
  cgroups = testCgroups('discovery');
  recv = await startOtlpReceiver({ grpc: true });
});

after(async () => {
  for (const s of Object.values(svc)) await s.stop();
  const code = await agent?.stop();
  await recv?.close();
  cgroups?.remove();
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, agent?.stderr.text);
});

async function spansOf(tag: string, n: number): Promise<ReceivedSpan[]> {
  const end = Date.now() + 15_000;
  for (;;) {
    const got = recv.spans().filter((s) => String(s.attributes['url.query']).startsWith(`from=${tag}&`));
    if (got.length >= n) return got;
    if (Date.now() > end) throw new Error(`${got.length}/${n} spans for ${tag}; agent stderr:\n${agent.stderr.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function send(tag: string, s: Service, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await rawExchange(s.port, [`GET /users/${i}?from=${tag}&i=${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`], 1);
}

test('exactly the selected processes are traced, each with its own resource', async () => {
  svc.alpha = await startService(path.join(dir, 'bin/svc-a'), {
    OTEL_SERVICE_NAME: 'alpha', OTEL_RESOURCE_ATTRIBUTES: 'team=payments,deployment.environment=test',
  });
  svc.quarantined = await startService(path.join(dir, 'bin/svc-a'), { OTEL_SERVICE_NAME: 'quarantined', K8S_NAMESPACE_NAME: 'quarantine' });

  agent = startAgent(['--discover', '--include', `exe=${dir}/**`, '--exclude', 'k8s.namespace=quarantine'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint, OTEL_RUST_AGENT_SCAN_INTERVAL: '250',
  });
  await agent.stderr.wait(/discovery: first scan done/, 60_000);
  await agent.stderr.wait(new RegExp(`process ${svc.alpha.pid} traced \\(${dir}/bin/svc-a, service.name=alpha`), 5_000);
  await agent.stderr.wait(new RegExp(`process ${svc.quarantined.pid} not traced \\(${dir}/bin/svc-a\\): excluded by "k8s.namespace=quarantine"`), 5_000);

  // Started after the agent. alpha-2 runs a file that is already attached:
  // its very first request is traced, before any scan has seen it.
  svc.alpha2 = await startService(path.join(dir, 'bin/svc-a'), { OTEL_SERVICE_NAME: 'alpha' });
  await send('alpha2', svc.alpha2, 1);
  svc.b = await startService(path.join(dir, 'bin/svc-b'), { K8S_POD_NAME: 'pod-b', K8S_NAMESPACE_NAME: 'shop', K8S_CONTAINER_NAME: 'web' });
  const cg = cgroups?.make(`machine/libpod-${containerId}`);
  svc.gamma = await startServiceCmd(['unshare', '-m', '--propagation', 'private', 'sh', '-c',
    `mount --bind "$1" "$2" && ${cg ? 'echo $$ > "$3/cgroup.procs" && ' : ''}exec "$2/svc-c"`,
    'sh', path.join(dir, 'private'), path.join(dir, 'mnt'), cg?.dir ?? ''], { OTEL_SERVICE_NAME: 'gamma' });
  // Outside its mount namespace the path it runs from is empty: the agent
  // reached the file through the process.
  assert.equal(fs.existsSync(path.join(dir, 'mnt/svc-c')), false);
  for (const s of [svc.b, svc.gamma]) await agent.stderr.wait(new RegExp(`process ${s.pid} traced`), 10_000);

  await send('alpha', svc.alpha, 3);
  await send('alpha2', svc.alpha2, 2);
  await send('quarantined', svc.quarantined, 3);
  await send('b', svc.b, 3);
  await send('gamma', svc.gamma, 3);

  const a = await spansOf('alpha', 3);
  const a2 = await spansOf('alpha2', 3);
  const b = await spansOf('b', 3);
  const g = await spansOf('gamma', 3);
  // The quarantined process runs the same file as alpha: its probes fire, and
  // the agent drops its spans.
  const st = await waitForStats(agent, (s) => s.filteredSpans >= 3);
  assert.equal(st.filteredSpans, 3);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(recv.spans().filter((s) => String(s.attributes['url.query']).startsWith('from=quarantined&')).length, 0);
  // Nothing but these four processes.
  assert.deepEqual([...new Set(recv.spans().map((s) => s.resource['process.pid']))].sort(),
    [svc.alpha.pid, svc.alpha2.pid, svc.b.pid, svc.gamma.pid].sort());
  assert.equal(recv.spans().length, 12);

  for (const s of a) {
    assert.equal(s.resource['process.pid'], svc.alpha.pid);
    assert.equal(s.resource['service.name'], 'alpha');
    assert.equal(s.resource['team'], 'payments');
    assert.equal(s.resource['deployment.environment'], 'test');
    assert.equal(s.resource['process.executable.path'], path.join(dir, 'bin/svc-a'));
    assert.equal(s.resource['container.id'], undefined);
  }
  for (const s of a2) {
    assert.equal(s.resource['process.pid'], svc.alpha2.pid);
    assert.equal(s.resource['service.name'], 'alpha');
    assert.equal(s.resource['team'], undefined);
  }
  for (const s of b) {
    assert.equal(s.resource['process.pid'], svc.b.pid);
    assert.equal(s.resource['service.name'], 'svc-b');
    assert.equal(s.resource['k8s.pod.name'], 'pod-b');
    assert.equal(s.resource['k8s.namespace.name'], 'shop');
    assert.equal(s.resource['k8s.container.name'], 'web');
    assert.equal(s.resource['process.executable.path'], path.join(dir, 'bin/svc-b'));
  }
  for (const s of g) {
    assert.equal(s.resource['process.pid'], svc.gamma.pid);
    assert.equal(s.resource['service.name'], 'gamma');
    assert.equal(s.resource['process.executable.path'], path.join(dir, 'mnt/svc-c'));
    if (cgroups) assert.equal(s.resource['container.id'], containerId);
    assert.equal(s.kind, 2);
    assert.equal(s.attributes['http.response.status_code'], 200);
  }
  if (!cgroups) process.stderr.write('# no cgroup v2 hierarchy to make a test cgroup in: container.id not checked\n');

  // Three files, one attachment each; svc-a's serves two traced processes.
  const files = new Map(st.files.map((f) => [f.path, f]));
  assert.equal(st.files.length, 3, JSON.stringify(st.files));
  assert.equal(files.get(path.join(dir, 'bin/svc-a'))?.processes, 2);
  assert.equal(files.get(path.join(dir, 'bin/svc-b'))?.processes, 1);
  assert.equal(files.get(path.join(dir, 'mnt/svc-c'))?.processes, 1);
  assert.ok(st.files.every((f) => f.origin === 'discovered'));
  assert.deepEqual(st.targets.sort(), [svc.alpha.pid, svc.alpha2.pid, svc.b.pid, svc.gamma.pid].sort());
  assert.deepEqual(st.excluded, [svc.quarantined.pid]);
  // Each request: parse + encode_status + axum's matched path, plus one parse
  // per new connection (hyper 1 sniffs for an HTTP/2 preface).
  const hits = st.probes.filter((p) => p.module !== 'tokio-spawn').reduce((n, p) => n + p.hits, 0);
  assert.equal(hits, 15 * 4, JSON.stringify(st.probes));
  // tokio-spawn: at least the task axum's accept loop spawns for each
  // connection (one per request here), plus whatever a service spawns while
  // it starts (timing-dependent: discovery attaches to running processes);
  // all outside any task, so no event.
  const spawn = st.probes.filter((p) => p.module === 'tokio-spawn');
  assert.ok(spawn.find((p) => p.probe === 'spawn')!.hits >= 15, JSON.stringify(spawn));
  assert.equal(spawn.reduce((n, p) => n + p.events, 0), 0, JSON.stringify(spawn));
});

test('a file is let go when no traced process runs it any more', async () => {
  await svc.b.stop();
  await agent.stderr.wait(new RegExp(`probes removed from ${dir}/bin/svc-b .*: no traced process runs it any more`), 10_000);
  // svc-a is still run by the quarantined process, which is not traced.
  await svc.alpha.stop();
  await svc.alpha2.stop();
  await agent.stderr.wait(new RegExp(`probes removed from ${dir}/bin/svc-a .*: no traced process runs it any more`), 10_000);
  const st = await waitForStats(agent, (s) => s.files.length === 1);
  assert.equal(st.files[0].path, path.join(dir, 'mnt/svc-c'));
  // A new process of the file that was let go is found again by the scan.
  svc.alpha3 = await startService(path.join(dir, 'bin/svc-a'), { OTEL_SERVICE_NAME: 'alpha' });
  await agent.stderr.wait(new RegExp(`process ${svc.alpha3.pid} traced`), 10_000);
  await send('alpha3', svc.alpha3, 1);
  const s = await spansOf('alpha3', 1);
  assert.equal(s[0].resource['process.pid'], svc.alpha3.pid);
});

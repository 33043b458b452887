// Discovery with pod metadata from the Kubernetes API server. No cluster runs
// here: a small HTTP server plays the API server's one endpoint the agent
// uses (GET /api/v1/pods?fieldSelector=spec.nodeName=<node>), with the JSON
// shape the real one returns, and answers late, so processes wait for it.
// The processes are real, in real cgroups named as the kubelet names them
// (systemd driver and cgroupfs driver), so the pod uid and container id come
// from their /proc/<pid>/cgroup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startServiceCmd, serviceBinary, startAgent, rawExchange, Service, RunningAgent } from '../helpers/procs';
import { testCgroups, randomHex, randomUid, TestCgroups } from '../helpers/cgroup';

let recv: OtlpReceiver;
let agent: RunningAgent;
let api: http.Server;
let dir: string;
let cgroups: TestCgroups | undefined;
const requests: string[] = [];
const svc: Service[] = [];

const checkout = { uid: randomUid(), container: randomHex(32) };
const worker = { uid: randomUid(), container: randomHex(32) };
const unlisted = { uid: randomUid(), container: randomHex(32) };

function podList() {
  const pod = (p: { uid: string; container: string }, name: string, app: string) => ({
    metadata: { uid: p.uid, name, namespace: 'shop', labels: { app, 'pod-template-hash': '7d9f' } },
    status: { containerStatuses: [{ name: app === 'checkout' ? 'server' : 'main', containerID: `containerd://${p.container}` }] },
  });
  return { kind: 'PodList', apiVersion: 'v1', items: [pod(checkout, 'checkout-7d9f-x2x4q', 'checkout'), pod(worker, 'worker-0', 'worker')] };
}

before(async () => {
  cgroups = testCgroups('k8s');
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'discovery-k8s-')));
  const exe = path.join(dir, 'app');
  fs.copyFileSync(serviceBinary('demo-service'), exe);
  fs.chmodSync(exe, 0o755);
  recv = await startOtlpReceiver({ grpc: true });
  api = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    // The first answer comes late: until then selectors on labels cannot be decided.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(podList()));
    }, requests.length === 1 ? 1500 : 0);
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
});

after(async () => {
  for (const s of svc) await s.stop();
  const code = await agent?.stop();
  await recv?.close();
  api?.close();
  cgroups?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code ?? 0, 0, agent?.stderr.text);
});

async function inCgroup(rel: string, env: Record<string, string>): Promise<Service> {
  const cg = cgroups!.make(rel);
  const s = await startServiceCmd(['sh', '-c', 'echo $$ > "$1/cgroup.procs" && exec "$2"', 'sh', cg.dir, path.join(dir, 'app')], env);
  svc.push(s);
  return s;
}

test('pods are selected by label and labelled from the API server', async (t) => {
  if (!cgroups) { t.skip('no cgroup v2 hierarchy to make test cgroups in'); return; }
  const u = (uid: string) => uid.replace(/-/g, '_');
  // systemd cgroup driver (containerd), and cgroupfs driver.
  const pCheckout = await inCgroup(`kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u(checkout.uid)}.slice/cri-containerd-${checkout.container}.scope`,
    { HOSTNAME: 'checkout-7d9f-x2x4q', KUBERNETES_SERVICE_HOST: '10.0.0.1' });
  const pWorker = await inCgroup(`kubepods/besteffort/pod${worker.uid}/${worker.container}`, { HOSTNAME: 'worker-0' });
  const pUnlisted = await inCgroup(`kubepods/besteffort/pod${unlisted.uid}/${unlisted.container}`, { HOSTNAME: 'gone-pod' });

  const port = (api.address() as AddressInfo).port;
  agent = startAgent(['--discover', '--include', `exe=${dir}/**,k8s.label.app=checkout`, '--k8s-api', `http://127.0.0.1:${port}`], {
    OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint, OTEL_RUST_AGENT_SCAN_INTERVAL: '250', OTEL_RUST_AGENT_K8S_NODE_NAME: 'test-node',
  });
  await agent.stderr.wait(/kubernetes: 2 pod\(s\) on node test-node/, 60_000);
  await agent.stderr.wait(new RegExp(`process ${pCheckout.pid} traced .*k8s.namespace.name=shop k8s.pod.name=checkout-7d9f-x2x4q`), 10_000);
  await agent.stderr.wait(new RegExp(`process ${pWorker.pid} not traced .*matches no include selector`), 10_000);
  await agent.stderr.wait(new RegExp(`process ${pUnlisted.pid} not traced .*matches no include selector`), 10_000);
  assert.ok(requests.every((r) => r === `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=test-node')}`), requests.join('\n'));

  for (const p of [pCheckout, pWorker, pUnlisted]) {
    await rawExchange(p.port, [`GET /users/1?pod=${p.pid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`], 1);
  }
  const end = Date.now() + 10_000;
  while (recv.spans().length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  const spans = recv.spans();
  assert.equal(spans.length, 1, JSON.stringify(spans.map((s) => s.resource)));
  const r = spans[0].resource;
  assert.equal(r['process.pid'], pCheckout.pid);
  assert.equal(r['k8s.pod.name'], 'checkout-7d9f-x2x4q');
  assert.equal(r['k8s.namespace.name'], 'shop');
  assert.equal(r['k8s.pod.uid'], checkout.uid);
  assert.equal(r['k8s.container.name'], 'server');
  assert.equal(r['k8s.node.name'], 'test-node');
  assert.equal(r['container.id'], checkout.container);
  assert.equal(r['service.name'], 'app');
});

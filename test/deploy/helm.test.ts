// The Helm chart (deploy/helm/otel-rust-agent): helm lint, and assertions on
// the objects `helm template` renders, with default values and with each
// switch; the plain manifests in deploy/kubernetes/ are its rendering; the
// ConfigMap it renders is configuration the agent itself accepts.
// helm is built from the Go module proxy (scripts/deploy-tools.sh helm).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../src/util/paths';
import { buildConfig } from '../../src/cli/config';

const root = repoRoot();
const chart = path.join(root, 'deploy/helm/otel-rust-agent');
let helm: string;

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

before(() => {
  helm = execFileSync(path.join(root, 'scripts/deploy-tools.sh'), ['helm'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 40 * 60_000 }).trim();
});

function render(args: string[] = [], kube = '1.31.0'): Obj[] {
  const out = execFileSync(helm, ['template', 'otel-rust-agent', chart, '--namespace', 'otel-rust-agent', '--kube-version', kube, ...args], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj).filter((o) => o);
}

const one = (objs: Obj[], kind: string) => {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `${found.length} ${kind}`);
  return found[0];
};
const agentContainer = (objs: Obj[]) => one(objs, 'DaemonSet').spec.template.spec.containers[0];

test('helm lint --strict passes', () => {
  const r = spawnSync(helm, ['lint', '--strict', chart], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

test('default values: a DaemonSet on the host PID namespace with only the capabilities it needs', () => {
  const objs = render();
  assert.deepEqual(objs.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'ServiceAccount']);
  for (const o of objs) {
    assert.equal(o.metadata.name, 'otel-rust-agent');
    assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'otel-rust-agent');
  }
  const ds = one(objs, 'DaemonSet');
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostPID, true);
  assert.equal(pod.hostNetwork, undefined);
  assert.equal(pod.serviceAccountName, 'otel-rust-agent');
  assert.equal(pod.automountServiceAccountToken, true);
  assert.deepEqual(pod.securityContext, { seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' } });
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' });
  assert.deepEqual(ds.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'otel-rust-agent', 'app.kubernetes.io/instance': 'otel-rust-agent' });
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  assert.equal(c.image, 'localhost/otel-rust-agent:0.1.0');
  assert.equal(c.args, undefined);
  assert.deepEqual(c.securityContext, {
    runAsUser: 0, runAsNonRoot: false, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'], add: ['BPF', 'PERFMON', 'SYS_PTRACE', 'DAC_READ_SEARCH'] },
  });
  // No host paths: /proc of the host PID namespace, /sys (BTF) and the
  // processes' own files through /proc/<pid>/root are all the agent reads.
  assert.deepEqual(pod.volumes, [{ name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }]);
  assert.deepEqual(c.volumeMounts, [{ name: 'run', mountPath: '/run/otel-rust-agent' }]);
  assert.deepEqual(c.envFrom, [{ configMapRef: { name: 'otel-rust-agent' } }]);
  assert.deepEqual(c.env, [{ name: 'OTEL_RUST_AGENT_K8S_NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }]);
  assert.deepEqual(c.ports, [{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(c.startupProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
  const ann = ds.spec.template.metadata.annotations;
  assert.equal(ann['prometheus.io/scrape'], 'true');
  assert.equal(ann['prometheus.io/port'], '9464');
  assert.match(ann['checksum/config'], /^[0-9a-f]{64}$/);

  const cm = one(objs, 'ConfigMap');
  assert.deepEqual(cm.data, {
    OTEL_RUST_AGENT_DISCOVER: 'true',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability.svc:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_RUST_AGENT_DISCOVER_EXCLUDE: 'k8s.namespace=kube-system',
    OTEL_RUST_AGENT_SCAN_INTERVAL: '1000',
    OTEL_RUST_AGENT_K8S_API: 'in-cluster',
    OTEL_RUST_AGENT_METRICS_ADDRESS: ':9464',
    OTEL_LOG_LEVEL: 'info',
  });

  // Least RBAC for the pod metadata lookup: list pods, nothing else.
  assert.deepEqual(one(objs, 'ClusterRole').rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]);
  const crb = one(objs, 'ClusterRoleBinding');
  assert.deepEqual(crb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'otel-rust-agent' });
  assert.deepEqual(crb.subjects, [{ kind: 'ServiceAccount', name: 'otel-rust-agent', namespace: 'otel-rust-agent' }]);
  assert.equal(one(objs, 'ServiceAccount').automountServiceAccountToken, true);
});

test('the agent accepts the ConfigMap the chart renders, as its pod would see it', () => {
  const cm = one(render(['--set', 'discovery.include={exe=/app/**,k8s.label.app=shop}', '--set', 'resourceAttributes=deployment.environment=prod']), 'ConfigMap');
  const cfg = buildConfig({}, { ...cm.data, OTEL_RUST_AGENT_K8S_NODE_NAME: 'node-1', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
  assert.deepEqual(cfg.warnings, []);
  assert.equal(cfg.discover, true);
  assert.deepEqual(cfg.include.map((s) => s.text), ['exe=/app/**', 'k8s.label.app=shop']);
  assert.deepEqual(cfg.exclude.map((s) => s.text), ['k8s.namespace=kube-system']);
  assert.deepEqual(cfg.metricsAddress, { host: undefined, port: 9464, text: ':9464' });
  assert.deepEqual(cfg.k8sApi, { url: 'https://10.96.0.1:443', inCluster: true, nodeName: 'node-1' });
  assert.deepEqual(cfg.resourceAttributes, { 'deployment.environment': 'prod' });
  assert.equal(cfg.endpoint, 'http://otel-collector.observability.svc:4317');
});

test('the plain manifests are the chart rendered with its defaults', () => {
  const committed = fs.readFileSync(path.join(root, 'deploy/kubernetes/otel-rust-agent.yaml'), 'utf8');
  const fresh = execFileSync(path.join(root, 'deploy/kubernetes/render.sh'), [helm], { encoding: 'utf8' });
  assert.equal(committed, fresh, 'deploy/kubernetes/otel-rust-agent.yaml is stale: run make manifests');
  const objs = parseAllDocuments(committed).map((d) => d.toJS() as Obj).filter((o) => o);
  const ns = one(objs, 'Namespace');
  assert.equal(ns.metadata.name, 'otel-rust-agent');
  assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'privileged');
  for (const o of objs.filter((x) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind))) assert.equal(o.metadata.namespace, undefined);
});

test('without the API server: no RBAC objects, no token mounted', () => {
  const objs = render(['--set', 'kubernetesApi.enabled=false']);
  assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'DaemonSet', 'ServiceAccount']);
  assert.equal(one(objs, 'DaemonSet').spec.template.spec.automountServiceAccountToken, false);
  assert.equal(one(objs, 'ServiceAccount').automountServiceAccountToken, false);
  assert.equal(one(objs, 'ConfigMap').data.OTEL_RUST_AGENT_K8S_API, 'off');
});

test('without metrics: no port, no probes, no scrape annotations', () => {
  const objs = render(['--set', 'metrics.enabled=false']);
  const c = agentContainer(objs);
  for (const k of ['ports', 'readinessProbe', 'livenessProbe', 'startupProbe']) assert.equal(c[k], undefined, k);
  assert.equal(one(objs, 'ConfigMap').data.OTEL_RUST_AGENT_METRICS_ADDRESS, undefined);
  assert.equal(one(objs, 'DaemonSet').spec.template.metadata.annotations['prometheus.io/scrape'], undefined);
});

test('switches: SYS_ADMIN for old kernels, export headers from a Secret, older clusters, extra args', () => {
  assert.deepEqual(agentContainer(render(['--set', 'sysAdmin=true'])).securityContext.capabilities.add,
    ['BPF', 'PERFMON', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'SYS_ADMIN']);
  const withSecret = agentContainer(render(['--set', 'otlp.headersSecret.name=otlp-auth', '--set', 'otlp.headersSecret.key=headers']));
  assert.deepEqual(withSecret.env[1], { name: 'OTEL_EXPORTER_OTLP_HEADERS', valueFrom: { secretKeyRef: { name: 'otlp-auth', key: 'headers' } } });
  const old = one(render([], '1.29.0'), 'DaemonSet').spec.template;
  assert.equal(old.spec.securityContext.appArmorProfile, undefined);
  assert.equal(old.metadata.annotations['container.apparmor.security.beta.kubernetes.io/agent'], 'unconfined');
  assert.deepEqual(agentContainer(render(['--set', 'extraArgs={--log-level,debug}'])).args, ['--log-level', 'debug']);
  const ds = one(render(['--set', 'seccompProfile.type=RuntimeDefault']), 'DaemonSet');
  assert.deepEqual(ds.spec.template.spec.securityContext.seccompProfile, { type: 'RuntimeDefault' });
});

test('bad values are refused by the chart\'s schema, with the value named', () => {
  for (const [set, re] of [
    ['otlp.protocol=http/json', /at '\/otlp\/protocol': value must be one of 'grpc', 'http\/protobuf'/],
    ['otlp.endpoint=collector:4317', /at '\/otlp\/endpoint'/],
    ['discovery.scanIntervalMs=5', /at '\/discovery\/scanIntervalMs'/],
    ['logLevel=loud', /at '\/logLevel'/],
  ] as const) {
    const r = spawnSync(helm, ['template', 'x', chart, '--set', set], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, set);
    assert.match(r.stderr, re, r.stderr);
  }
});

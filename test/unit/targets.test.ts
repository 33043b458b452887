// Target facts and discovery selectors (src/targets/): globs, selector
// parsing and three-valued matching, what cgroup paths of real runtimes say,
// /proc/<pid>/environ, pod facts, resources, and the ELF sniff on real files.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { globToRegExp, parseSelector, decide, matchSelector } from '../../src/targets/selectors';
import { cgroupPathOf, containerIdFromCgroup, containerIdFromMountinfo, podUidFromCgroup, bareContainerId } from '../../src/targets/container';
import { parseEnviron, k8sFactsOf, buildResource, serviceNameOf, ProcessDetails, ProcessInfo, scanProcesses } from '../../src/targets/process';
import { parsePodList } from '../../src/targets/k8s';
import { sniffRustElf } from '../../src/targets/elf-sniff';
import { buildConfig } from '../../src/cli/config';
import { UserError } from '../../src/util/errors';
import { serviceBinary } from '../helpers/procs';
import { buildRustc } from '../helpers/rustbuild';

const ID = 'a'.repeat(12) + '0123456789abcdef'.repeat(3) + 'b'.repeat(4);

describe('globs', () => {
  test('path globs: * stays within a component, ** crosses them', () => {
    const re = globToRegExp('/srv/*/bin/app-?', true);
    assert.ok(re.test('/srv/shop/bin/app-1'));
    assert.ok(!re.test('/srv/shop/x/bin/app-1'));
    assert.ok(!re.test('/srv/shop/bin/app-12'));
    const deep = globToRegExp('/srv/**/app', true);
    assert.ok(deep.test('/srv/app'));
    assert.ok(deep.test('/srv/a/b/c/app'));
    assert.ok(!deep.test('/srvx/app'));
    assert.ok(globToRegExp('/tmp/**', true).test('/tmp/a/b'));
    assert.ok(globToRegExp('**/checkout', true).test('/usr/local/bin/checkout'));
  });
  test('name globs: * is anything; classes; regex characters are literal', () => {
    assert.ok(globToRegExp('check*', false).test('checkout-v2'));
    assert.ok(globToRegExp('svc-[ab]', false).test('svc-b'));
    assert.ok(!globToRegExp('svc-[!ab]', false).test('svc-b'));
    assert.ok(globToRegExp('a.b+c', false).test('a.b+c'));
    assert.ok(!globToRegExp('a.b', false).test('axb'));
  });
});

describe('selectors', () => {
  const usage = (fn: () => unknown, msg: RegExp) => assert.throws(fn, (e: unknown) => e instanceof UserError && e.exitCode === 2 && msg.test(e.message));

  test('criteria must all match; unknown facts make the answer unknown', () => {
    const s = parseSelector('exe=/srv/**, k8s.namespace=shop', '--include');
    assert.equal(matchSelector(s, { exe: '/srv/a/app' }), undefined);
    assert.equal(matchSelector(s, { exe: '/usr/bin/app' }), false);
    assert.equal(matchSelector(s, { exe: '/srv/a/app', k8sNamespace: 'shop' }), true);
    assert.equal(matchSelector(s, { exe: '/srv/a/app', k8sNamespace: null }), false);
  });

  test('include any, exclude none; exclusion wins', () => {
    const inc = [parseSelector('name=checkout', 'x'), parseSelector('exe=/opt/**', 'x')];
    const exc = [parseSelector('container.id=' + ID.slice(0, 12), 'x')];
    assert.equal(decide(inc, exc, { exe: '/opt/x', names: ['x'], containerId: null }).selected, true);
    assert.equal(decide(inc, exc, { exe: '/usr/x', names: ['x'], containerId: null }).selected, false);
    const ex = decide(inc, exc, { exe: '/opt/x', names: ['x'], containerId: ID });
    assert.deepEqual(ex, { selected: false, why: `excluded by "container.id=${ID.slice(0, 12)}"` });
    // Nothing to include: everything is, unless excluded; unknown exclusions wait.
    assert.equal(decide([], exc, { exe: '/a', names: ['a'] }).selected, undefined);
    assert.equal(decide([], [], { exe: '/a', names: ['a'] }).selected, true);
    // An include that cannot match decides at once, whatever else is unknown.
    assert.equal(decide([parseSelector('exe=/srv/*', 'x')], exc, { exe: '/usr/a', names: ['a'] }).selected, false);
  });

  test('labels, service names, process names (comm or the executable\'s)', () => {
    const s = parseSelector('k8s.label.app=shop-*,service.name=api', 'x');
    assert.equal(matchSelector(s, { k8sLabels: { app: 'shop-web' }, serviceName: 'api' }), true);
    assert.equal(matchSelector(s, { k8sLabels: {}, serviceName: 'api' }), false);
    assert.equal(matchSelector(s, { k8sLabels: null, serviceName: 'api' }), false);
    assert.equal(matchSelector(s, { serviceName: 'api' }), undefined);
    assert.equal(matchSelector(parseSelector('name=tokio-runtime-w', 'x'), { names: ['tokio-runtime-w', 'shop'] }), true);
  });

  test('bad selectors are usage errors, one line each', () => {
    usage(() => parseSelector('colour=red', '--include'), /^--include "colour=red": unknown selector key "colour" \(use exe, name, /);
    usage(() => parseSelector('exe=bin/app', '--include'), /give an absolute path or a glob starting with \/ or \*/);
    usage(() => parseSelector('container.id=abc', '--exclude'), /at least 12 hex digits/);
    usage(() => parseSelector('name', '--include'), /"name" is not key=value/);
    usage(() => parseSelector(' ', '--include'), /empty selector/);
    usage(() => parseSelector('name=a,name=b', '--include'), /"name" is given twice/);
    usage(() => parseSelector('k8s.label.=x', '--include'), /unknown selector key "k8s.label."/);
  });
});

describe('configuration of targets, discovery and metrics', () => {
  const usage = (flags: Record<string, string | boolean | string[]>, env: NodeJS.ProcessEnv, msg: string | RegExp) =>
    assert.throws(() => buildConfig(flags, env), (e: unknown) => e instanceof UserError && e.exitCode === 2 &&
      (typeof msg === 'string' ? e.message === msg : msg.test(e.message)));

  test('several executables: repeated --exe, or a list in OTEL_TARGET_EXE', () => {
    assert.deepEqual(buildConfig({ exe: ['/a', '/b', '/a'] }, {}).targetExes, ['/a', '/b']);
    assert.deepEqual(buildConfig({}, { OTEL_TARGET_EXE: ' /a , /b ' }).targetExes, ['/a', '/b']);
    // The flags replace the variable.
    assert.deepEqual(buildConfig({ exe: ['/c'] }, { OTEL_TARGET_EXE: '/a,/b' }).targetExes, ['/c']);
    usage({}, { OTEL_TARGET_EXE: '/a,,/b' }, 'OTEL_TARGET_EXE: empty entry in "/a,,/b" (a comma-separated list of paths)');
    usage({ exe: [''] }, {}, '--exe: empty path');
  });

  test('discovery and selectors', () => {
    const c = buildConfig({ discover: true, include: ['exe=/srv/**', 'name=api'], exclude: ['k8s.namespace=kube-system'] }, {});
    assert.equal(c.discover, true);
    assert.deepEqual(c.include.map((s) => s.text), ['exe=/srv/**', 'name=api']);
    assert.deepEqual(c.exclude.map((s) => s.text), ['k8s.namespace=kube-system']);
    const e = buildConfig({}, {
      OTEL_RUST_AGENT_DISCOVER: 'TRUE', OTEL_RUST_AGENT_DISCOVER_INCLUDE: 'exe=/srv/**,name=api; name=web',
      OTEL_RUST_AGENT_SCAN_INTERVAL: '500',
    });
    assert.deepEqual(e.include.map((s) => s.text), ['exe=/srv/**,name=api', 'name=web']);
    assert.equal(e.include[0].criteria.length, 2);
    assert.equal(e.scanIntervalMs, 500);
    // Discovery and explicit executables together.
    assert.deepEqual(buildConfig({ discover: true, exe: ['/a'] }, {}).targetExes, ['/a']);
    const w = buildConfig({ discover: true }, { OTEL_RUST_AGENT_SCAN_INTERVAL: '5' });
    assert.equal(w.scanIntervalMs, 1000);
    assert.match(w.warnings[0], /OTEL_RUST_AGENT_SCAN_INTERVAL: "5" is not a scan interval/);
  });

  test('conflicts and bad discovery input are usage errors', () => {
    usage({ pid: '5', discover: true }, {}, 'give either a PID (OTEL_TARGET_PID / --pid) or discovery (OTEL_RUST_AGENT_DISCOVER / --discover), not both');
    usage({ include: ['name=x'] }, {}, '--include: selectors choose among discovered processes; turn discovery on (--discover / OTEL_RUST_AGENT_DISCOVER=true)');
    usage({}, { OTEL_RUST_AGENT_DISCOVER_EXCLUDE: 'name=x' }, /^OTEL_RUST_AGENT_DISCOVER_EXCLUDE: selectors choose/);
    usage({ discover: true }, { OTEL_RUST_AGENT_DISCOVER_INCLUDE: 'exe=relative' }, /^OTEL_RUST_AGENT_DISCOVER_INCLUDE "exe=relative": /);
    usage({ discover: true, include: ['k8s.label.app=x'] }, {}, 'selector "k8s.label.app=x": pod labels are only known from the API server; set --k8s-api (in-cluster or a URL)');
    usage({ discover: true, 'service-name': 'x' }, {}, /^--service-name names the processes of --pid \/ --exe targets/);
    assert.match(buildConfig({ discover: true }, { OTEL_SERVICE_NAME: 'x' }).warnings[0], /^OTEL_SERVICE_NAME="x" names the processes of --pid/);
  });

  test('metrics address: a port alone is loopback only', () => {
    const m = (v: string) => buildConfig({ 'metrics-address': v }, {}).metricsAddress;
    assert.deepEqual(m('9464'), { host: '127.0.0.1', port: 9464, text: '9464' });
    assert.deepEqual(m(':9464'), { host: undefined, port: 9464, text: ':9464' });
    assert.deepEqual(m('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464, text: '0.0.0.0:9464' });
    assert.deepEqual(m('[::1]:0'), { host: '::1', port: 0, text: '[::1]:0' });
    assert.deepEqual(buildConfig({}, { OTEL_RUST_AGENT_METRICS_ADDRESS: 'localhost:9100' }).metricsAddress, { host: 'localhost', port: 9100, text: 'localhost:9100' });
    assert.equal(buildConfig({}, {}).metricsAddress, undefined);
    for (const bad of ['http://x:1', '65536', 'a:b', '1.2.3.4:', '']) {
      if (bad === '') continue;
      usage({ 'metrics-address': bad }, {}, `--metrics-address: "${bad}" is not an address (PORT, HOST:PORT, [IPv6]:PORT or :PORT)`);
    }
  });

  test('Kubernetes API: off, in-cluster, or a URL', () => {
    assert.equal(buildConfig({ 'k8s-api': 'off' }, {}).k8sApi, undefined);
    assert.deepEqual(buildConfig({ 'k8s-api': 'in-cluster' }, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', OTEL_RUST_AGENT_K8S_NODE_NAME: 'n1' }).k8sApi,
      { url: 'https://10.96.0.1:443', inCluster: true, nodeName: 'n1' });
    assert.deepEqual(buildConfig({}, { OTEL_RUST_AGENT_K8S_API: 'http://127.0.0.1:8001' }).k8sApi,
      { url: 'http://127.0.0.1:8001', inCluster: false, nodeName: os.hostname() });
    usage({ 'k8s-api': 'in-cluster' }, {}, '--k8s-api: in-cluster needs KUBERNETES_SERVICE_HOST (set by the kubelet in a pod)');
    usage({ 'k8s-api': 'ftp://x' }, {}, '--k8s-api: "ftp://x" is not an http(s) URL');
    usage({ 'k8s-api': 'cluster' }, {}, '--k8s-api: "cluster" is not off, in-cluster or a URL');
  });
});

describe('cgroups and containers', () => {
  test('container ids from the paths each runtime writes', () => {
    const cases: [string, string | null][] = [
      [`0::/system.slice/docker-${ID}.scope`, ID],
      [`0::/docker/${ID}`, ID],
      [`0::/machine.slice/libpod-${ID}.scope/container`, ID],
      [`0::/libpod_parent/libpod-${ID}`, ID],
      [`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_1111_2222_3333_444455556666.slice/cri-containerd-${ID}.scope`, ID],
      [`0::/kubepods/besteffort/pod1a2b3c4d-1111-2222-3333-444455556666/${ID}`, ID],
      [`0::/kubepods.slice/kubepods-pod1a2b3c4d_1111_2222_3333_444455556666.slice/crio-${ID}.scope`, ID],
      [`12:memory:/docker/${ID}\n0::/`, ID],
      [`0::/../../kubepods/besteffort/pod1a2b3c4d-1111-2222-3333-444455556666/${ID}`, ID],
      ['0::/user.slice/user-1000.slice/session-2.scope', null],
      ['4:memory:/process_api/fa7f5cbe46036464066b392c20770f83\n0::/', null],
    ];
    for (const [cg, want] of cases) assert.equal(containerIdFromCgroup(cg), want, cg);
  });
  test('pod uids, with the systemd driver\'s underscores', () => {
    assert.equal(podUidFromCgroup('0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_1111_2222_3333_444455556666.slice/x'),
      '1a2b3c4d-1111-2222-3333-444455556666');
    assert.equal(podUidFromCgroup('0::/kubepods/pod1a2b3c4d-1111-2222-3333-444455556666/abc'), '1a2b3c4d-1111-2222-3333-444455556666');
    assert.equal(podUidFromCgroup(`0::/docker/${ID}`), null);
  });
  test('the cgroup path: unified first, else name=systemd', () => {
    assert.equal(cgroupPathOf('4:memory:/a\n1:name=systemd:/b\n0::/c\n'), '/c');
    assert.equal(cgroupPathOf('4:memory:/a\n1:name=systemd:/b\n'), '/b');
    assert.equal(cgroupPathOf(''), '');
  });
  test('container ids from mounts when the cgroup path says nothing', () => {
    const docker = `812 800 8:1 /var/lib/docker/containers/${ID}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw`;
    const podman = `812 800 0:44 /containers/storage/overlay-containers/${ID}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw`;
    assert.equal(containerIdFromMountinfo(docker), ID);
    assert.equal(containerIdFromMountinfo(podman), ID);
    assert.equal(containerIdFromMountinfo('20 1 8:1 / / rw - ext4 /dev/sda1 rw'), null);
    assert.equal(bareContainerId(`containerd://${ID}`), ID);
  });
});

describe('process facts and resources', () => {
  const info: ProcessInfo = { pid: 42, exePath: '/srv/bin/checkout (deleted)', exeId: '1:2', startTime: '1', commandLine: ['/srv/bin/checkout', '-v'], comm: 'checkout' };
  const details = (env: Record<string, string>, extra: Partial<ProcessDetails> = {}): ProcessDetails => ({
    env, attributes: Object.fromEntries((env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',').filter(Boolean).map((kv) => kv.split('='))),
    cgroup: '/', containerId: null, podUid: null, saNamespace: null, ...extra,
  });

  test('only the variables the agent uses are kept from an environment', () => {
    const raw = Buffer.from('PATH=/bin\0OTEL_SERVICE_NAME=shop\0SECRET_TOKEN=x\0OTEL_RESOURCE_ATTRIBUTES=a=b,c=d\0K8S_POD_NAME=p-1\0=odd\0NOEQUALS\0');
    assert.deepEqual(parseEnviron(raw), { OTEL_SERVICE_NAME: 'shop', OTEL_RESOURCE_ATTRIBUTES: 'a=b,c=d', K8S_POD_NAME: 'p-1' });
  });

  test('service.name: the agent\'s (named targets), the process\'s own, its attributes, the agent\'s attributes, the executable', () => {
    const d = details({ OTEL_SERVICE_NAME: 'own', OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr' });
    assert.equal(serviceNameOf(info, { serviceName: 'agent', extra: {}, details: d }), 'agent');
    assert.equal(serviceNameOf(info, { extra: {}, details: d }), 'own');
    assert.equal(serviceNameOf(info, { extra: {}, details: details({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr' }) }), 'attr');
    assert.equal(serviceNameOf(info, { extra: { 'service.name': 'agent-attr' }, details: details({}) }), 'agent-attr');
    assert.equal(serviceNameOf(info, { extra: {}, details: details({ OTEL_SERVICE_NAME: '' }) }), 'checkout');
  });

  test('pod facts: the API server first, then the process\'s attributes, downward-API variables, the kubelet\'s traces', () => {
    const uid = '1a2b3c4d-1111-2222-3333-444455556666';
    const d = details({ HOSTNAME: 'checkout-abc', OTEL_RESOURCE_ATTRIBUTES: 'k8s.namespace.name=from-attrs' }, { podUid: uid, saNamespace: 'from-sa', containerId: ID });
    assert.deepEqual(k8sFactsOf(d, { configured: false, loaded: false }),
      { podUid: uid, podName: 'checkout-abc', namespace: 'from-attrs', containerName: null, labels: null });
    assert.equal(k8sFactsOf(details({ HOSTNAME: 'x' }, { podUid: uid, saNamespace: 'from-sa' }), { configured: false, loaded: false }).namespace, 'from-sa');
    // Not a pod: HOSTNAME is just a host name.
    assert.equal(k8sFactsOf(details({ HOSTNAME: 'laptop' }), { configured: false, loaded: false }).podName, null);
    assert.equal(k8sFactsOf(details({ K8S_POD_NAME: 'p', POD_NAMESPACE: 'ns' }), { configured: false, loaded: false }).namespace, 'ns');
    // Labels are unknown until the API server answered.
    assert.equal(k8sFactsOf(d, { configured: true, loaded: false }).labels, undefined);
    assert.equal(k8sFactsOf(d, { configured: true, loaded: true }).labels, null);
    const pods = parsePodList({ items: [{
      metadata: { uid, name: 'checkout-7d9f', namespace: 'shop', labels: { app: 'checkout' } },
      status: { containerStatuses: [{ name: 'server', containerID: `containerd://${ID}` }] },
    }, { metadata: { name: 'no-uid' } }] });
    assert.equal(pods.size, 1);
    assert.deepEqual(k8sFactsOf(d, { configured: true, loaded: true, pod: pods.get(uid) }),
      { podUid: uid, podName: 'checkout-7d9f', namespace: 'shop', containerName: 'server', labels: { app: 'checkout' } });
  });

  test('the resource: agent attributes < the process\'s own < what the agent detects', () => {
    const uid = '1a2b3c4d-1111-2222-3333-444455556666';
    const d = details({ OTEL_SERVICE_NAME: 'own', OTEL_RESOURCE_ATTRIBUTES: 'team=a,process.pid=1,deployment.environment=prod' }, { containerId: ID, podUid: uid });
    const r = buildResource(info, {
      extra: { 'deployment.environment': 'test', region: 'eu' }, rustcVersion: '1.95.0', details: d, nodeName: 'node-1',
      k8s: { podUid: uid, podName: 'p', namespace: 'ns', containerName: 'c', labels: null },
    });
    const a = r.attributes;
    assert.equal(a['service.name'], 'own');
    assert.equal(a['team'], 'a');
    assert.equal(a['region'], 'eu');
    assert.equal(a['deployment.environment'], 'prod');
    assert.equal(a['process.pid'], 42);
    assert.equal(a['process.executable.path'], '/srv/bin/checkout');
    assert.equal(a['process.executable.name'], 'checkout');
    assert.equal(a['container.id'], ID);
    assert.equal(a['k8s.pod.uid'], uid);
    assert.equal(a['k8s.pod.name'], 'p');
    assert.equal(a['k8s.namespace.name'], 'ns');
    assert.equal(a['k8s.container.name'], 'c');
    assert.equal(a['k8s.node.name'], 'node-1');
    assert.equal(a['process.runtime.version'], '1.95.0');
  });

  test('a /proc scan finds this process with the inode of its executable', () => {
    const st = fs.statSync('/proc/self/exe');
    const me = scanProcesses().find((e) => e.pid === process.pid);
    assert.equal(me?.exeId, `${st.dev}:${st.ino}`);
  });
});

describe('ELF sniff', () => {
  const sniff = (p: string, crates = ['hyper']) => {
    const fd = fs.openSync(p, 'r');
    try { return sniffRustElf(fd, crates); } finally { fs.closeSync(fd); }
  };
  test('a Rust service linking hyper is a candidate; the crate must be named in its symbols', () => {
    assert.deepEqual(sniff(serviceBinary('demo-service')), { rust: true, crates: ['hyper'] });
    assert.deepEqual(sniff(serviceBinary('demo-service'), ['hyper', 'tonic']), { rust: true, crates: ['hyper'] });
    assert.deepEqual(sniff(serviceBinary('demo-service'), ['tonic']),
      { rust: false, why: 'a Rust executable whose symbols name none of the supported crates (tonic)' });
  });
  test('Rust without .comment (as Debian\'s packaging strips it) is still recognized by its runtime symbols', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sniff-'));
    try {
      const bin = buildRustc('fn main() { println!("{}", std::env::args().count()); }', { name: 'sniffme' });
      const nocomment = path.join(dir, 'nocomment');
      require('node:child_process').execFileSync('objcopy', ['--remove-section=.comment', bin, nocomment]);
      assert.deepEqual(sniff(bin, ['std']), { rust: true, crates: ['std'] });
      assert.deepEqual(sniff(nocomment, ['std']), { rust: true, crates: ['std'] });
      assert.deepEqual(sniff(nocomment, ['hyper']), { rust: false, why: 'a Rust executable whose symbols name none of the supported crates (hyper)' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  test('not Rust, not ELF', () => {
    assert.deepEqual(sniff(process.execPath), { rust: false, why: 'not built by rustc (.comment)' });
    assert.equal(sniff('/etc/hostname').rust, false);
    const dash = fs.existsSync('/usr/bin/dash') ? '/usr/bin/dash' : '/bin/sh';
    assert.equal(sniff(dash).rust, false);
  });
});

// The container image: built here without any image registry (a Debian base
// made with debootstrap, imported into podman), then run as the DaemonSet
// runs it (host PID namespace, read-only root, no new privileges, every
// capability dropped but the ones a feature needs) against services on the
// host, with spans checked at a real OTLP receiver. Each capability is then
// left out in turn to show that it is needed, and what the agent says.
//
// Two things of these machines shape the podman command line (see README):
// crun refuses this host's hybrid cgroup layout (its cgroup v2 hierarchy has
// a controller), so runc is used when crun fails that way; and this sandbox
// has no CAP_SYS_RESOURCE, so the container's rlimits are set to what the
// host already allows instead of podman's defaults.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startServiceCmd, serviceBinary, rawExchange, Output, Service } from '../helpers/procs';

const root = repoRoot();
let image: string;
let runtime: string[] = [];
let limits: string[] = [];
let recv: OtlpReceiver;
let dir: string;
let svc: Service;

const NEEDED = ['bpf', 'perfmon', 'sys_ptrace', 'dac_read_search'];

function hardLimit(name: string): number {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name))!;
  const v = line.slice(26).trim().split(/\s+/)[1];
  return v === 'unlimited' ? Infinity : Number(v);
}

before(async () => {
  image = execFileSync(path.join(root, 'deploy/container/build-image.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60_000 }).trim().split('\n').pop()!;
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  limits = ['--ulimit', `nofile=${Math.min(hardLimit('Max open files'), 1 << 20)}:${Math.min(hardLimit('Max open files'), 1 << 20)}`,
    '--ulimit', `nproc=${Math.min(hardLimit('Max processes'), pidMax)}:${Math.min(hardLimit('Max processes'), pidMax)}`];
  const probe = spawnSync('podman', ['run', '--rm', '--network=none', ...limits, image, '--version'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    process.stderr.write(`# podman run with its default runtime failed: ${probe.stderr.trim()}\n`);
    if (/cgroups in hybrid mode not supported/.test(probe.stderr)) runtime = ['--runtime', 'runc'];
  }
  recv = await startOtlpReceiver({ grpc: true });
  // A service that only its own user can read: opening its executable needs CAP_DAC_READ_SEARCH.
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'container-')));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'private'));
  const exe = path.join(dir, 'private', 'boxed-service');
  fs.copyFileSync(serviceBinary('demo-service'), exe);
  fs.chownSync(path.join(dir, 'private'), 65534, 65534);
  fs.chownSync(exe, 65534, 65534);
  fs.chmodSync(exe, 0o700);
  fs.chmodSync(path.join(dir, 'private'), 0o700);
  svc = await startServiceCmd(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', exe], { OTEL_SERVICE_NAME: 'boxed' });
});

after(async () => {
  await svc?.stop();
  await recv?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Run { code: number | null; out: Output; err: Output }

/** The agent in a container, as the DaemonSet runs it, with `caps` only. */
function runAgent(caps: string[], args: string[], opts: { seccomp?: 'unconfined' | 'default'; env?: Record<string, string>; during?: (r: Run) => Promise<void> } = {}): Promise<Run> {
  const name = `otel-rust-agent-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const argv = ['run', ...runtime, '--rm', '--name', name, '--pid=host', '--network=host', ...limits,
    '--read-only', '--tmpfs', '/run/otel-rust-agent', '--security-opt', 'no-new-privileges',
    ...(opts.seccomp === 'default' ? [] : ['--security-opt', 'seccomp=unconfined']),
    '--cap-drop=all', ...(caps.length ? [`--cap-add=${caps.join(',')}`] : []),
    '-e', `OTEL_EXPORTER_OTLP_ENDPOINT=${recv.grpcEndpoint}`, '-e', 'OTEL_RUST_AGENT_SCAN_INTERVAL=250',
    ...Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    image, ...args];
  const p = spawn('podman', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const run: Run = { code: null, out: new Output(p.stdout), err: new Output(p.stderr) };
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  return (async () => {
    try {
      if (opts.during) {
        await Promise.race([opts.during(run), exited.then((c) => { throw new Error(`container exited with ${c}:\n${run.err.text}`); })]);
        spawnSync('podman', ['stop', '-t', '20', name]);
      }
      run.code = await exited;
      return run;
    } catch (e) {
      spawnSync('podman', ['rm', '-f', name]);
      throw e;
    }
  })();
}

async function spansFor(tag: string, n: number, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = recv.spans().filter((s) => String(s.attributes['url.query']) === `c=${tag}`);
    if (got.length >= n || Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the agent traces the service, sends `n` requests tagged `tag`, and waits for their spans. */
const traffic = (tag: string, n = 3) => async (r: Run) => {
  await r.err.wait(new RegExp(`process ${svc.pid} traced`), 90_000);
  for (let i = 0; i < n; i++) await rawExchange(svc.port, [`GET /users/${i}?c=${tag} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`], 1);
  assert.equal((await spansFor(tag, n)).length, n, r.err.text);
};

test('the image: Debian base from debootstrap, the agent as entrypoint', () => {
  const inspect = JSON.parse(execFileSync('podman', ['image', 'inspect', image], { encoding: 'utf8' }))[0];
  assert.deepEqual(inspect.Config.Entrypoint, ['/usr/bin/node', '/opt/otel-rust-agent/bin/otel-rust-agent']);
  assert.deepEqual(inspect.Config.Cmd, ['--discover']);
  assert.equal(inspect.Config.Labels['org.opencontainers.image.title'], 'otel-rust-agent');
  const r = spawnSync('podman', ['run', ...runtime, '--rm', '--network=none', '--cap-drop=all', ...limits, image, '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `otel-rust-agent ${JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version}\n`);
  const os_ = spawnSync('podman', ['run', ...runtime, '--rm', '--network=none', '--cap-drop=all', ...limits, '--entrypoint', '/bin/sh', image, '-c',
    '. /etc/os-release; echo $ID $VERSION_CODENAME; node --version'], { encoding: 'utf8' });
  assert.match(os_.stdout, /^debian trixie\nv20\.\d+\.\d+\n$/, os_.stderr);
});

test('discovery from a container: host PID namespace, BPF, PERFMON, SYS_PTRACE and DAC_READ_SEARCH only', async () => {
  const r = await runAgent(NEEDED, ['--discover', '--include', `exe=${dir}/**`], { during: traffic('discover') });
  assert.equal(r.code, 0, r.err.text);
  const spans = await spansFor('discover', 3);
  for (const s of spans) {
    assert.equal(s.kind, 2);
    assert.equal(s.attributes['http.response.status_code'], 200);
    // The host's pid, the service's own name and path: seen from the container through /proc.
    assert.equal(s.resource['process.pid'], svc.pid);
    assert.equal(s.resource['service.name'], 'boxed');
    assert.equal(s.resource['process.executable.path'], path.join(dir, 'private', 'boxed-service'));
  }
  assert.match(r.err.text, /attach mode multi/);
});

test('by PID from a container, the same capabilities', async () => {
  const r = await runAgent(NEEDED, ['--pid', String(svc.pid)], { during: traffic('pid') });
  assert.equal(r.code, 0, r.err.text);
});

test('without CAP_BPF or CAP_PERFMON: one line, exit code 4', async () => {
  for (const drop of ['bpf', 'perfmon']) {
    const r = await runAgent(NEEDED.filter((c) => c !== drop), ['--pid', String(svc.pid)]);
    assert.equal(r.code, 4, r.err.text);
    assert.equal(r.err.text, 'otel-rust-agent: permission denied: loading eBPF needs root (or CAP_BPF and CAP_PERFMON; CAP_SYS_ADMIN covers both); run with sudo\n');
  }
});

test('without CAP_SYS_PTRACE: other processes are out of reach, and the agent says so', async () => {
  const caps = NEEDED.filter((c) => c !== 'sys_ptrace');
  const byPid = await runAgent(caps, ['--pid', String(svc.pid)]);
  assert.equal(byPid.code, 4, byPid.err.text);
  assert.match(byPid.err.text, new RegExp(`^otel-rust-agent: permission denied reading /proc/${svc.pid}/exe even as root: .*CAP_SYS_PTRACE over it is needed\n$`));
  const disc = await runAgent(caps, ['--discover', '--include', `exe=${dir}/**`, '--duration', '3']);
  assert.equal(disc.code, 0, disc.err.text);
  assert.match(disc.err.text, /warn: cannot see the executables of \d+ process\(es\) \(EACCES on \/proc\/<pid>\/exe\): reading other processes needs CAP_SYS_PTRACE/);
  assert.doesNotMatch(disc.err.text, new RegExp(`process ${svc.pid} traced`));
});

test('without CAP_DAC_READ_SEARCH: an executable only its owner can read cannot be opened', async () => {
  const r = await runAgent(NEEDED.filter((c) => c !== 'dac_read_search'), ['--discover', '--include', `exe=${dir}/**`, '--duration', '3']);
  assert.equal(r.code, 0, r.err.text);
  assert.match(r.err.text, new RegExp(`warn: discovery: cannot open the executable of process ${svc.pid} \\(${dir}/private/boxed-service\\): EACCES`));
  assert.doesNotMatch(r.err.text, new RegExp(`process ${svc.pid} traced`));
});

test('under podman\'s default seccomp profile bpf() needs CAP_SYS_ADMIN', async () => {
  const refused = await runAgent(NEEDED, ['--pid', String(svc.pid)], { seccomp: 'default' });
  assert.equal(refused.code, 4, refused.err.text);
  assert.match(refused.err.text, /^otel-rust-agent: the kernel refused bpf\(\) although the agent has the capabilities it needs: a seccomp filter is active/);
  const r = await runAgent(['sys_admin', 'sys_ptrace', 'dac_read_search'], ['--pid', String(svc.pid)], { seccomp: 'default', during: traffic('seccomp-default') });
  assert.equal(r.code, 0, r.err.text);
});

test('perf-event uprobes (the fallback) need CAP_SYS_ADMIN', async () => {
  const env = { OTEL_RUST_AGENT_ATTACH: 'perf' };
  const refused = await runAgent(NEEDED, ['--pid', String(svc.pid)], { env });
  assert.equal(refused.code, 4, refused.err.text);
  assert.equal(refused.err.text, 'otel-rust-agent: permission denied: perf-event uprobes (this kernel has no uprobe_multi links, or OTEL_RUST_AGENT_ATTACH=perf) need CAP_SYS_ADMIN\n');
  const r = await runAgent([...NEEDED, 'sys_admin'], ['--pid', String(svc.pid)], { env, during: traffic('perf') });
  assert.equal(r.code, 0, r.err.text);
  assert.match(r.err.text, /attach mode perf/);
});

test('containers of one image share one file: one attachment, each hit counted once', async () => {
  // An image holding a Rust service, on the agent's own base: every container
  // of it has its own overlayfs mount (its own st_dev) over one file, which is
  // where the kernel puts the probes.
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'overlay-image-'));
  const tag = `localhost/otel-rust-agent-test-app:${process.pid}`;
  const names = [1, 2].map((i) => `otel-rust-agent-test-app-${process.pid}-${i}`);
  const base = execFileSync(path.join(root, 'deploy/container/base-image.sh'), { encoding: 'utf8' }).trim().split('\n').pop()!;
  fs.copyFileSync(serviceBinary('demo-service'), path.join(ctx, 'overlay-app'));
  fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM ${base}\nCOPY overlay-app /opt/otel-rust-agent-test/overlay-app\nENTRYPOINT ["/opt/otel-rust-agent-test/overlay-app"]\n`);
  execFileSync('podman', ['build', '-q', '-t', tag, ctx], { stdio: 'ignore' });
  const { startAgent, waitForStats } = await import('../helpers/procs');
  let agent: ReturnType<typeof startAgent> | undefined;
  try {
    const ports: number[] = [];
    const ids: string[] = [];
    for (const [i, name] of names.entries()) {
      ids.push(execFileSync('podman', ['run', ...runtime, '-d', '--name', name, '--network=host', ...limits, '-e', 'PORT=0', '-e', `OTEL_SERVICE_NAME=replica-${i + 1}`, tag], { encoding: 'utf8' }).trim());
      const end = Date.now() + 20_000;
      let m: RegExpExecArray | null = null;
      while (!(m = /listening on 127\.0\.0\.1:(\d+)/.exec(execFileSync('podman', ['logs', name], { encoding: 'utf8' }))) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      ports.push(Number(m![1]));
    }
    agent = startAgent(['--discover', '--include', 'exe=/opt/otel-rust-agent-test/**'], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint, OTEL_RUST_AGENT_SCAN_INTERVAL: '250' });
    await agent.stderr.wait(/is the file already attached as \/opt\/otel-rust-agent-test\/overlay-app .*: no second attachment/, 60_000);
    await agent.stderr.wait(/process \d+ traced .*service.name=replica-2/, 10_000);
    await agent.stderr.wait(/process \d+ traced .*service.name=replica-1/, 10_000);
    for (const [i, port] of ports.entries()) {
      await rawExchange(port, [1, 2, 3].map((n) => `GET /users/${n}?c=replica-${i + 1} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`), 3);
    }
    for (const [i, id] of ids.entries()) {
      const spans = await spansFor(`replica-${i + 1}`, 3);
      assert.equal(spans.length, 3);
      for (const s of spans) {
        assert.equal(s.resource['service.name'], `replica-${i + 1}`);
        assert.equal(s.resource['container.id'], id);
        assert.equal(s.resource['process.executable.path'], '/opt/otel-rust-agent-test/overlay-app');
      }
    }
    // 6 requests on 2 connections: parse 6 + 2 (the HTTP/2 sniff per connection), encode_status 6; once each.
    await waitForStats(agent, (x) => x.probes.some((p) => p.probe === 'encode_status' && p.hits >= 6));
    await new Promise((r) => setTimeout(r, 1200));
    const final = agent.stats();
    assert.equal(final.probes.find((p) => p.probe === 'parse')!.hits, 8, JSON.stringify(final.probes));
    assert.equal(final.probes.find((p) => p.probe === 'encode_status')!.hits, 6);
    assert.equal(final.files.length, 1, JSON.stringify(final.files));
    assert.equal(final.files[0].processes, 2);
  } finally {
    const code: number | undefined = agent ? await agent.stop() : undefined;
    for (const n of names) spawnSync('podman', ['rm', '-f', '-t', '0', n]);
    spawnSync('podman', ['rmi', '-f', tag]);
    fs.rmSync(ctx, { recursive: true, force: true });
    assert.equal(code ?? 0, 0, agent?.stderr.text);
  }
});

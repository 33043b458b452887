// Security: the agent attaches only to what it was told to trace (a process
// it was not given, a reused PID, a look-alike path); secrets in headers are
// never exported and sensitive query values are redacted; its stats file and
// sockets are root's alone; and each mode runs with exactly the capabilities
// the README lists for it (capsh), and fails clearly without any one of them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, rawExchange, agentForOtherUsers, Output, Service } from '../helpers/procs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'security-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

let recv: OtlpReceiver;
let bin: string;
const services: Service[] = [];

before(async () => {
  recv = await startOtlpReceiver({ grpc: true, http: false, keepRaw: true });
  bin = serviceBinary('fault-server');
});

after(async () => {
  for (const s of services) await s.stop();
  await recv.close();
});

async function service(file = bin): Promise<Service> {
  const s = await startService(file);
  services.push(s);
  return s;
}

/** n requests tagged who=<tag>; all must be answered 200. */
async function hit(svc: Service, tag: string, n = 3): Promise<void> {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`GET /status/200?who=${tag}&i=${i} HTTP/1.1\r\nHost: fixture\r\n\r\n`);
  const res = await rawExchange(svc.port, parts, n);
  assert.deepEqual(res.map((r) => r.status), Array(n).fill(200));
}

function spansOf(tag: string): ReceivedSpan[] {
  return recv.spans().filter((s) => new RegExp(`(^|&)who=${tag}(&|$)`).test(String(s.attributes['url.query'] ?? '')));
}

async function settle(): Promise<void> {
  await sleep(1500); // export interval 500 ms, and margin
}

test('by PID: another process of the same file is not traced (its requests do not even hit the probes)', async () => {
  const a = await service();
  const other = await service();
  const agent = await attachAgent(['--pid', String(a.pid), '--endpoint', recv.grpcEndpoint]);
  try {
    const s0 = await freshStats(agent);
    await hit(a, 'pid-target');
    await hit(other, 'pid-other', 5);
    await settle();
    assert.equal(spansOf('pid-target').length, 3);
    assert.equal(spansOf('pid-other').length, 0);
    const s1 = await freshStats(agent);
    const parse = (s: typeof s1) => s.probes.find((p) => p.probe === 'parse')!.hits;
    assert.equal(parse(s1) - parse(s0), 3, 'the kernel filters the probes to the target process');
    assert.deepEqual(s1.targets, [a.pid]);
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

test('by PID: the target exits and its PID is reused by a new process of the same file: nothing of it is traced, the agent stops', async () => {
  const a = await service();
  const pid = a.pid;
  const agent = await attachAgent(['--pid', String(pid), '--endpoint', recv.grpcEndpoint]);
  await hit(a, 'reuse-first');
  await a.stop();
  // The next PID the kernel hands out is ns_last_pid + 1: make it the old one.
  let b: Service | undefined;
  for (let i = 0; i < 20 && !b; i++) {
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const s = await service();
    if (s.pid === pid) b = s; else await s.stop();
  }
  assert.ok(b, `could not get pid ${pid} again`);
  await hit(b, 'reuse-second', 5).catch(() => undefined);
  const code = await Promise.race([agent.exited, sleep(5000).then(() => 'still running')]);
  assert.equal(code, 0, agent.stderr.text);
  assert.match(agent.stderr.text, new RegExp(`stopping: process ${pid} exited`));
  await hit(b, 'reuse-third', 2);
  await settle();
  assert.equal(spansOf('reuse-first').length, 3);
  assert.equal(spansOf('reuse-second').length, 0, 'the new process behind the old PID was not traced');
  assert.equal(spansOf('reuse-third').length, 0);
});

test('by path: a byte-identical copy elsewhere is not traced; the same file under another name (symlink) is', async () => {
  for (const d of ['one', 'two', 'three']) fs.mkdirSync(path.join(tmp, d));
  const target = path.join(tmp, 'one', 'fault-server');
  const lookalike = path.join(tmp, 'two', 'fault-server');
  const alias = path.join(tmp, 'three', 'fault-server');
  fs.copyFileSync(bin, target);
  fs.copyFileSync(bin, lookalike);
  fs.chmodSync(target, 0o755);
  fs.chmodSync(lookalike, 0o755);
  fs.symlinkSync(target, alias);
  const agent = await attachAgent(['--exe', target, '--endpoint', recv.grpcEndpoint]);
  try {
    const x = await service(target);
    const y = await service(lookalike);
    const z = await service(alias);
    const s0 = await freshStats(agent);
    await hit(x, 'path-target');
    await hit(y, 'path-lookalike', 5);
    await hit(z, 'path-alias', 2);
    await settle();
    assert.equal(spansOf('path-target').length, 3);
    assert.equal(spansOf('path-lookalike').length, 0);
    assert.equal(spansOf('path-alias').length, 2, 'a symlink names the same file: its process is the target');
    const s1 = await freshStats(agent);
    const parse = (s: typeof s1) => s.probes.find((p) => p.probe === 'parse')!.hits;
    assert.equal(parse(s1) - parse(s0), 5, 'the copy runs no probe');
    assert.deepEqual(s1.targets.sort(), [x.pid, z.pid].sort());
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

test('secrets: credential headers are never exported; URL credentials and sensitive query values are redacted', async () => {
  const svc = await service();
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint]);
  try {
    const heads = [
      'GET /status/200?who=secrets&sig=S3CR3T-A&keep=1 HTTP/1.1\r\nHost: fixture\r\nAuthorization: Bearer S3CR3T-B\r\n' +
        'Cookie: session=S3CR3T-C\r\nProxy-Authorization: Basic S3CR3T-D\r\nUser-Agent: probe/1\r\n\r\n',
      'GET http://user:S3CR3T-E@fixture/status/200?who=secrets&X-Goog-Signature=S3CR3T-F HTTP/1.1\r\nHost: fixture\r\n\r\n',
      'GET /status/200?AWSAccessKeyId=S3CR3T-G&Expires=17&Signature=S3CR3T-H&who=secrets HTTP/1.1\r\nHost: fixture\r\n' +
        'Set-Cookie: a=S3CR3T-I\r\n\r\n',
    ];
    const res = await rawExchange(svc.port, heads, 3);
    assert.deepEqual(res.map((r) => r.status), [200, 200, 200]);
    await settle();
    const spans = spansOf('secrets');
    assert.deepEqual(spans.map((s) => [s.attributes['url.path'], s.attributes['url.query']]).sort(), [
      ['/status/200', 'AWSAccessKeyId=REDACTED&Expires=17&Signature=REDACTED&who=secrets'],
      ['/status/200', 'who=secrets&X-Goog-Signature=REDACTED'],
      ['/status/200', 'who=secrets&sig=REDACTED&keep=1'],
    ]);
    for (const s of spans) {
      assert.deepEqual(Object.keys(s.attributes).filter((k) => /header|cookie|auth/i.test(k)), []);
    }
    // Nowhere in what went over the wire.
    const wire = Buffer.concat(recv.rawBodies());
    assert.equal(wire.indexOf('S3CR3T'), -1, 'no secret in any export request');
    assert.ok(wire.indexOf('who=secrets') >= 0);
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

/** The agent's listening sockets (TCP, UDP, unix), from its descriptors and /proc/net. */
function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try { const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)); if (m) inodes.add(m[1]); } catch { /* closed */ }
  }
  const out: string[] = [];
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    for (const line of fs.readFileSync(`/proc/${pid}/net/${proto}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9])) continue;
      if (proto.startsWith('tcp') && f[3] !== '0A') continue; // LISTEN only
      const [addr, port] = f[1].split(':');
      out.push(`${proto} ${addr} ${parseInt(port, 16)}`);
    }
  }
  for (const line of fs.readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 7 && inodes.has(f[6]) && (parseInt(f[3], 16) & 0x10000) !== 0) out.push(`unix ${f[7] ?? ''}`);
  }
  return out;
}

test('the stats file is root\'s alone (0600), and the agent listens nowhere unless told to (then on 127.0.0.1 only)', async () => {
  const svc = await service();
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint]);
  try {
    await freshStats(agent);
    const st = fs.statSync(agent.statsFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, 0);
    assert.deepEqual(listeningSockets(agent.proc.pid!), []);
  } finally {
    assert.equal(await agent.stop(), 0);
  }
  // The default place, and a directory the agent creates itself.
  const dir = path.join(tmp, 'run', 'otel-rust-agent');
  const withMetrics = await attachAgent(['--pid', String(svc.pid), '--exporter', 'none', '--metrics-address', '0']);
  const own = spawn(process.execPath, [agentForOtherUsers(), '--pid', String(svc.pid), '--exporter', 'none', '--stats-file', path.join(dir, 'stats.json')],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const ownErr = new Output(own.stderr);
  try {
    await ownErr.wait(/tracing process/, 60_000);
    await freshStats({ ...withMetrics, statsFile: path.join(dir, 'stats.json'), stats: () => JSON.parse(fs.readFileSync(path.join(dir, 'stats.json'), 'utf8')) });
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'stats.json')).mode & 0o777, 0o600);
    await freshStats(withMetrics);
    const socks = listeningSockets(withMetrics.proc.pid!);
    assert.equal(socks.length, 1, JSON.stringify(socks));
    assert.match(socks[0], /^tcp 0100007F \d+$/, 'metrics on 127.0.0.1 only');
  } finally {
    const ownExit = new Promise((r) => own.on('exit', r));
    own.kill('SIGINT');
    await withMetrics.stop();
    await ownExit;
  }
});

// ---------------------------------------------------------------------------
// Capabilities: the bounding set of a root process is what it gets at exec, so
// `capsh --drop=<every other capability>` runs the agent with exactly a set.

const ALL_CAPS = (spawnSync('capsh', ['--print'], { encoding: 'utf8' }).stdout.match(/^Bounding set =(.*)$/m)?.[1] ?? '').split(',').filter(Boolean);

function capshArgs(keep: string[], argv: string[]): string[] {
  const drop = ALL_CAPS.filter((c) => !keep.includes(c));
  return [`--drop=${drop.join(',')}`, '--', '-c', 'exec "$@"', 'agent', ...argv];
}

async function underCapsh(keep: string[], args: string[], env: Record<string, string> = {}):
  Promise<{ code: number | null; stderr: string; attached: boolean; stop: () => Promise<number | null> }> {
  const p = spawn('capsh', capshArgs(keep, [process.execPath, agentForOtherUsers(), ...args, '--stats-file', path.join(tmp, `caps-${Date.now()}.json`)]),
    { env: { ...process.env, OTEL_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const err = new Output(p.stderr);
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  const first = await Promise.race([err.wait(/tracing (process|every process)|discovery: first scan done/, 60_000).then(() => 'attached'), exited.then(() => 'exited')]);
  return {
    code: first === 'exited' ? await exited : null, stderr: err.text, attached: first === 'attached',
    stop: async () => { p.kill('SIGINT'); return exited; },
  };
}

const MODES: { name: string; caps: string[]; args: (svc: Service) => string[]; env?: Record<string, string>; missing: Record<string, RegExp> }[] = [
  {
    name: '--pid (uprobe_multi)', caps: ['cap_bpf', 'cap_perfmon', 'cap_sys_ptrace'], args: (s) => ['--pid', String(s.pid)],
    missing: {
      cap_bpf: /^otel-rust-agent: permission denied: loading eBPF needs root \(or CAP_BPF and CAP_PERFMON; CAP_SYS_ADMIN covers both\); run with sudo$/,
      cap_perfmon: /^otel-rust-agent: permission denied: loading eBPF needs root/,
      cap_sys_ptrace: /^otel-rust-agent: permission denied reading \/proc\/\d+\/exe even as root: .*CAP_SYS_PTRACE over it is needed$/,
    },
  },
  {
    name: '--exe (uprobe_multi)', caps: ['cap_bpf', 'cap_perfmon'], args: () => ['--exe', bin],
    missing: { cap_bpf: /^otel-rust-agent: permission denied: loading eBPF needs root/, cap_perfmon: /^otel-rust-agent: permission denied: loading eBPF needs root/ },
  },
  {
    name: '--discover', caps: ['cap_bpf', 'cap_perfmon', 'cap_sys_ptrace'], args: () => ['--discover', '--include', `exe=${bin}`],
    missing: { cap_bpf: /^otel-rust-agent: permission denied: loading eBPF needs root/ },
  },
  {
    name: '--pid with perf-event uprobes', caps: ['cap_sys_admin', 'cap_sys_ptrace'], args: (s) => ['--pid', String(s.pid)], env: { OTEL_RUST_AGENT_ATTACH: 'perf' },
    missing: { cap_sys_admin: /^otel-rust-agent: permission denied: loading eBPF needs root/ },
  },
];

for (const mode of MODES) {
  test(`capabilities, ${mode.name}: exactly ${mode.caps.join(', ')} trace; without ${Object.keys(mode.missing).join(' or ')}, one line and exit 4`, async () => {
    const svc = await service();
    const tag = `caps-${mode.name.replace(/\W+/g, '')}`;
    const a = await underCapsh(mode.caps, [...mode.args(svc), '--endpoint', recv.grpcEndpoint], mode.env);
    assert.ok(a.attached, a.stderr);
    // In discovery the scan may come a moment after the first line.
    await sleep(mode.name === '--discover' ? 1200 : 200);
    await hit(svc, tag);
    await settle();
    assert.equal(spansOf(tag).length, 3, a.stderr);
    for (const s of spansOf(tag)) assert.equal(s.resource['process.pid'], svc.pid);
    assert.equal(await a.stop(), 0, a.stderr);
    for (const [cap, re] of Object.entries(mode.missing)) {
      const r = await underCapsh(mode.caps.filter((c) => c !== cap), mode.args(svc), mode.env);
      const lines = r.stderr.trim().split('\n').filter((l) => !/^otel-rust-agent (info|warn):/.test(l));
      assert.equal(r.code, 4, `without ${cap}: ${r.stderr}`);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], re);
    }
  });
}

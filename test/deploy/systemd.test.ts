// The systemd unit (deploy/systemd/otel-rust-agent.service). systemd is not
// PID 1 on these machines, so the unit cannot be started here; what can be
// checked is:
//   - systemd-analyze verify accepts it (ExecStart pointed at this checkout);
//   - systemd-analyze security rates its exposure (offline) at OK or better;
//   - every system call the agent makes while it traces a service (strace
//     -f over a real run) is one its SystemCallFilter allows, and its
//     capability bounding set is the measured one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';
import { startService, serviceBinary, AGENT_BIN, rawExchange, Output } from '../helpers/procs';
import { spawn } from 'node:child_process';

const root = repoRoot();
const unitPath = path.join(root, 'deploy/systemd/otel-rust-agent.service');
const unit = fs.readFileSync(unitPath, 'utf8');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function directive(name: string): string[] {
  return unit.split('\n').filter((l) => l.startsWith(`${name}=`)).map((l) => l.slice(name.length + 1));
}

/** A copy of the unit whose ExecStart is this checkout's agent (verify checks the binary exists). */
function localUnit(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unit-'));
  const p = path.join(dir, 'otel-rust-agent.service');
  fs.writeFileSync(p, unit.replace(/^ExecStart=.*$/m, `ExecStart=${AGENT_BIN}`));
  return p;
}

test('systemd-analyze verify accepts the unit', { skip: !have('systemd-analyze') && 'systemd-analyze is not installed' }, () => {
  const r = spawnSync('systemd-analyze', ['verify', localUnit()], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.split('\n').filter((l) => l.includes('otel-rust-agent')).join('\n'), '');
});

test('its exposure, as systemd-analyze security rates it, is OK or better', { skip: !have('systemd-analyze') && 'systemd-analyze is not installed' }, () => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', localUnit()], { encoding: 'utf8' });
  const m = /Overall exposure level for otel-rust-agent\.service: (\d+\.\d+) (\S+)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  process.stderr.write(`# systemd-analyze security: exposure ${m[1]} ${m[2]}\n`);
  assert.ok(Number(m[1]) <= 4.0, `exposure ${m[1]}`);
  assert.match(m[2], /^(OK|SAFE)$/);
});

test('the capabilities are the measured ones; root, no new privileges, every process visible', () => {
  assert.deepEqual(directive('CapabilityBoundingSet'), ['CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH']);
  assert.deepEqual(directive('User'), ['root']);
  assert.deepEqual(directive('NoNewPrivileges'), ['yes']);
  assert.deepEqual(directive('ProtectProc'), ['default']);
  assert.deepEqual(directive('ProcSubset'), []);
  assert.deepEqual(directive('MemoryDenyWriteExecute'), ['no']);
  assert.deepEqual(directive('RuntimeDirectory'), ['otel-rust-agent']);
});

/** The system calls a SystemCallFilter= allow list names, its @groups expanded by systemd itself. */
function allowedSyscalls(filter: string): Set<string> {
  const out = new Set<string>();
  const expand = (item: string, depth: number) => {
    if (!item.startsWith('@')) { out.add(item); return; }
    if (depth > 8) return;
    const text = execFileSync('systemd-analyze', ['syscall-filter', '--no-pager', item], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const line of text.split('\n').slice(1)) {
      const t = line.trim();
      if (!t || t.startsWith('#')) continue;
      expand(t, depth + 1);
    }
  };
  for (const item of filter.split(/\s+/).filter(Boolean)) expand(item, 0);
  return out;
}

test('every system call the agent makes while tracing is allowed by its SystemCallFilter', {
  skip: (!have('strace') && 'strace is not installed (scripts/deploy-tools.sh systemd)') || (!have('systemd-analyze') && 'systemd-analyze is not installed'),
}, async () => {
  const allowed = allowedSyscalls(directive('SystemCallFilter').join(' '));
  assert.ok(allowed.has('bpf') && allowed.has('perf_event_open') && allowed.has('read') && allowed.has('mmap'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'systemd-'));
  const exe = path.join(dir, 'unit-app');
  fs.copyFileSync(serviceBinary('demo-service'), exe);
  fs.chmodSync(exe, 0o755);
  const svc = await startService(exe);
  const trace = path.join(dir, 'strace.txt');
  try {
    // The unit's own settings: discovery, metrics on; the agent exits by itself.
    const agent = spawn('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=all', process.execPath, AGENT_BIN,
      '--discover', '--include', `exe=${dir}/**`, '--exporter', 'none', '--metrics-address', '127.0.0.1:0', '--duration', '6',
      '--stats-file', path.join(dir, 'stats.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err = new Output(agent.stderr);
    const exited = new Promise<number | null>((r) => agent.on('exit', (c) => r(c)));
    await err.wait(new RegExp(`process ${svc.pid} traced`), 60_000);
    const metrics = /metrics: (http:\/\/127\.0\.0\.1:\d+)/.exec(err.text)![1];
    for (let i = 0; i < 5; i++) await rawExchange(svc.port, [`GET /users/${i} HTTP/1.1\r\nHost: x\r\n\r\n`], 1);
    assert.equal((await fetch(`${metrics}/metrics`)).status, 200);
    assert.equal(await exited, 0, err.text);
    const used = new Set<string>();
    for (const line of fs.readFileSync(trace, 'utf8').split('\n')) {
      const m = /^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]/.exec(line);
      if (m && !line.includes('resumed>') && m[1] !== 'exit' && !/^\d+\s+\+\+\+|^\d+\s+---/.test(line)) used.add(m[1]);
    }
    assert.ok(used.has('bpf'), `no bpf() in the trace: ${[...used].join(' ')}`);
    const refused = [...used].filter((s) => !allowed.has(s)).sort();
    assert.deepEqual(refused, [], `system calls the unit's filter would refuse (EPERM): ${refused.join(', ')}`);
  } finally {
    await svc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Starting the target services and the agent for end-to-end tests. Tests only
// ever attach to processes they started here.
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { appBinary, repoRoot } from './rustbuild';

export const AGENT_BIN = path.join(repoRoot(), 'bin', 'otel-rust-agent');

const live = new Set<ChildProcess>();
process.on('exit', () => { for (const c of live) if (c.exitCode === null) c.kill('SIGKILL'); });

function track(c: ChildProcess): ChildProcess {
  live.add(c);
  c.on('exit', () => live.delete(c));
  return c;
}

export class Output {
  text = '';
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];
  constructor(stream: NodeJS.ReadableStream | null) {
    stream?.on('data', (d: Buffer) => {
      this.text += d.toString();
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(this.text.slice(w.from));
        if (m) w.resolve(m);
        return !m;
      });
    });
  }
  /** Waits for `re` in output written after `from` (default: anywhere). */
  wait(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const m = re.exec(this.text.slice(from));
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output so far:\n${this.text}`)), timeoutMs);
      this.waiters.push({ re, from, resolve: (x) => { clearTimeout(t); resolve(x); } });
    });
  }
}

export interface Service {
  proc: ChildProcess;
  pid: number;
  port: number;
  stdout: Output;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startService(binPath: string, env: Record<string, string> = {}): Promise<Service> {
  return startServiceCmd([binPath], env);
}

/**
 * Starts a service through a command line that ends by exec'ing it (a shell
 * that enters a cgroup, unshare for a mount namespace...), so the pid spawned
 * is the service's own.
 */
export async function startServiceCmd(argv: string[], env: Record<string, string> = {}): Promise<Service> {
  const proc = track(spawn(argv[0], argv.slice(1), { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = new Output(proc.stdout);
  const err = new Output(proc.stderr);
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  const m = await Promise.race([
    out.wait(/listening on 127\.0\.0\.1:(\d+)/, 20_000),
    exited.then((c) => { throw new Error(`${argv.join(' ')} exited with ${c} before listening: ${err.text}`); }),
  ]);
  return {
    proc, pid: proc.pid!, port: Number(m[1]), exited, stdout: out,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

export type AppName = 'demo-service' | 'hyper014-server' | 'axum08-server' | 'axum07-server' | 'tonic-server' | 'fault-server' | 'reqwest12-client' | 'reqwest11-client' | 'reqwest13-client' | 'tonic-client' | 'otel-sdk-service' | 'otel-sdk028-service' | 'fanout-service' | 'otelctx-service';

export function serviceBinary(name: AppName): string {
  return appBinary(name);
}

export interface RunningAgent {
  proc: ChildProcess;
  stdout: Output;
  stderr: Output;
  exited: Promise<number>;
  statsFile: string;
  /** SIGINT, then the exit code. */
  stop(): Promise<number>;
  stats(): AgentStats;
}

export interface AgentStats {
  targets: number[];
  excluded: number[];
  files: { exeId: string; path: string; origin: string; processes: number }[];
  processes: { pid: number; exe: string; origin: string; selected: boolean; why: string; resource: Record<string, string | number | boolean> }[];
  filteredSpans: number;
  probes: { id: number; module: string; probe: string; hits: number; events: number; drops: number; badLayout: number; noEntry: number; disabled: string | null }[];
  /** Counters per library (and `context`). */
  spans: Record<string, Record<string, number>>;
  export: Record<string, number>;
}

/** `nodeArgs`: options for node itself, before the agent's script. */
export function startAgent(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): RunningAgent {
  const statsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agent-stats-')), 'stats.json');
  const proc = track(spawn(process.execPath, [...nodeArgs, AGENT_BIN, ...args, '--stats-file', statsFile], {
    env: { ...process.env, OTEL_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const exited = new Promise<number>((r) => proc.on('exit', (c, s) => r(c ?? (s ? 128 : 1))));
  return {
    proc, stdout: new Output(proc.stdout), stderr: new Output(proc.stderr), exited, statsFile,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT');
      return exited;
    },
    stats() { return JSON.parse(fs.readFileSync(statsFile, 'utf8')) as AgentStats; },
  };
}

/** Starts the agent and waits until its probes are attached. */
export async function attachAgent(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<RunningAgent> {
  const a = startAgent(args, env, nodeArgs);
  await Promise.race([
    a.stderr.wait(/tracing (process|every process)/, 60_000),
    a.exited.then((c) => { throw new Error(`agent exited with ${c} before attaching:\n${a.stderr.text}`); }),
  ]);
  return a;
}

let stagedForOthers: string | undefined;

/**
 * A copy of the agent that any user can read and run: the checkout may sit
 * in a directory only root can enter (a clone under /root), where another
 * user cannot load a single file of it. Holds what the npm package holds,
 * plus the runtime dependencies; made once per test process.
 */
export function agentForOtherUsers(): string {
  if (stagedForOthers) return stagedForOthers;
  const root = repoRoot();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-world-readable-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const part of ['bin', 'dist/src', 'build/bpf', 'offsets', 'package.json']) {
    fs.mkdirSync(path.dirname(path.join(dir, part)), { recursive: true });
    fs.cpSync(path.join(root, part), path.join(dir, part), { recursive: true });
  }
  const dev = new Set(['typescript', '@types', 'undici-types', '.bin']);
  for (const m of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (!dev.has(m)) fs.cpSync(path.join(root, 'node_modules', m), path.join(dir, 'node_modules', m), { recursive: true });
  }
  spawnSync('chmod', ['-R', 'a+rX', dir]);
  fs.chmodSync(dir, 0o755);
  return (stagedForOthers = path.join(dir, 'bin', 'otel-rust-agent'));
}

/** Runs the agent to completion (bad-input cases). */
export function runAgentSync(args: string[], opts: { env?: Record<string, string>; asNobody?: boolean; timeoutMs?: number } = {}) {
  // As another user, the checkout itself may be out of reach: run a readable copy.
  const argv = [process.execPath, opts.asNobody ? agentForOtherUsers() : AGENT_BIN, ...args];
  const cmd = opts.asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...argv] : argv;
  const r = spawnSync(cmd[0], cmd.slice(1), { env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Waits until the agent's counters say `pred`, polling its stats file. */
export async function waitForStats(a: RunningAgent, pred: (s: AgentStats) => boolean, timeoutMs = 10_000): Promise<AgentStats> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try { const s = a.stats(); if (pred(s)) return s; } catch { /* not written yet */ }
    if (Date.now() > end) throw new Error(`agent stats never matched; last: ${fs.existsSync(a.statsFile) ? fs.readFileSync(a.statsFile, 'utf8') : 'none'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The agent's counters as of now: the stats file is rewritten once a second,
 * so a plain read may predate hits that already happened (a "before" taken
 * from it would count them twice).
 */
export async function freshStats(a: RunningAgent, timeoutMs = 10_000): Promise<AgentStats> {
  const since = Date.now();
  return waitForStats(a, (s) => Date.parse((s as unknown as { updated: string }).updated) > since, timeoutMs);
}

/**
 * Raw HTTP/1.1 over one TCP connection: writes `parts` in order (a number is a
 * pause in ms), then reads until `responses` complete responses arrived.
 * Lets tests control keep-alive, pipelining and split heads exactly.
 */
export function rawExchange(port: number, parts: (string | number)[], responses: number, timeoutMs = 10_000): Promise<{ status: number; body: string }[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const got: { status: number; body: string }[] = [];
    const t = setTimeout(() => { sock.destroy(); reject(new Error(`raw exchange timed out with ${got.length}/${responses} responses`)); }, timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.subarray(0, end).toString('latin1');
        const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) break;
        got.push({ status: Number(head.slice(9, 12)), body: buf.subarray(end + 4, end + 4 + len).toString() });
        buf = buf.subarray(end + 4 + len);
      }
      if (got.length >= responses) { clearTimeout(t); sock.end(); resolve(got); }
    });
    sock.on('error', (e) => { clearTimeout(t); reject(e); });
    sock.on('connect', async () => {
      for (const p of parts) {
        if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
        else sock.write(p);
      }
    });
  });
}

// ---------------------------------------------------------------------------
// A cgroup of the test's own, for the propagation tests: the socket programs
// attach to the traced process's cgroup v2, so the service must never share
// one with anything the test did not start.

/** Makes `<cgroup2 mount>/otel-rust-agent-<tag>-<test pid>`. */
export function makeTestCgroup(tag: string): string {
  const mount = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  if (!mount) throw new Error('no cgroup v2 hierarchy is mounted');
  const dir = path.join(mount, `otel-rust-agent-${tag}-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Starts `binary` inside `cgroup` (it joins before exec). */
export function startServiceInCgroup(cgroup: string, binary: string, env: Record<string, string> = {}): Promise<Service> {
  return startServiceCmd(['sh', '-c', 'echo $$ > "$1/cgroup.procs" && exec "$2"', 'sh', cgroup, binary], env);
}

/** Removes the cgroup once its processes are gone (left for the kernel to empty otherwise). */
export function removeTestCgroup(cgroup: string): void {
  try { fs.rmdirSync(cgroup); } catch { /* still emptying */ }
}

/** Waits until the agent's socket programs are attached to exactly one cgroup. */
export function propagationAttached(a: RunningAgent, timeoutMs = 10_000): Promise<AgentStats> {
  return waitForStats(a, (s) => (s as unknown as { propagation?: { cgroups: string[] } }).propagation?.cgroups.length === 1, timeoutMs);
}

// `make bench`: what the agent costs a Rust service, side by side with and
// without it, and how that cost compares with the kernel's floor (the price of
// the uprobe traps themselves on this machine).
//
//   node dist/bench/run.js          (as root; `make bench` builds everything first)
//
// Environment:
//   BENCH_ROUNDS     rounds per scenario (default 3)
//   BENCH_SECONDS    seconds per measured wrk run (default 5)
//   BENCH_SCENARIOS  comma-separated subset of scenario names (default: all)
//   BENCH_CALIB_N    probed calls per calibration run (default 200000)
//   BENCH_PIN        "c1" (default): in the -c1 scenarios, run wrk and every
//                    thread of the service on CPU 0 (see PIN below); "none": never pin
//
// Prints the results (a JSON array, one object per scenario) on stdout and
// writes bench/results/latest.json and bench/results/latest.md. Progress goes
// to stderr. Only processes this script started are traced, and only over
// loopback.
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startService, startAgent, serviceBinary, Service, RunningAgent, AppName } from '../test/helpers/procs';
import { repoRoot } from '../test/helpers/rustbuild';
import { ReceiverProcess } from './receiver';
import { BpfRuntime } from '../src/bpf/loader';
import { analyzeBinary } from '../src/binary';

// ---------------------------------------------------------------- settings

interface Scenario {
  name: string;
  /** The fixture that serves it (apps/). */
  service: AppName;
  /** wrk for HTTP/1.1; h2load (nghttp2) for HTTP/2, gRPC included (a gRPC call is an HTTP/2 POST). */
  tool: 'wrk' | 'h2load';
  path: string;
  wrkArgs: string[];
  /** Saturated runs are judged by CPU time per request, latency-bound ones by wall time. */
  saturated: boolean;
  /** h2load: request body and extra headers (the gRPC scenario's framed message). */
  body?: Buffer;
  headers?: string[];
  /** The fixture calls a downstream HTTP server (FANOUT_DOWNSTREAM): the bench serves one over loopback. */
  downstream?: boolean;
  /** Report what context tracking costs (issue 8): hits of the spawn probes and the reqwest::blocking hand-over, and thread-creation tracepoint runs, per request. */
  context?: boolean;
}

const C1 = ['-t1', '-c1', '--latency'];
const C16 = ['-t2', '-c16', '--latency'];
/** h2load: one client, one stream at a time (the HTTP/2 counterpart of wrk -c1). */
const H2_C1 = ['-t1', '-c1', '-m1'];
/** GetProductRequest { id: 7 } as one gRPC length-prefixed message (uncompressed). */
const GRPC_GET_PRODUCT = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x07]);
/** The fan-out scenario: 8 requests in flight, unpinned (the service's 4 workers, its std threads and the downstream share the CPUs). */
const FANOUT_C8 = ['-t1', '-c8', '--latency'];
const ALL_SCENARIOS: Scenario[] = [
  { name: 'trivial', service: 'demo-service', tool: 'wrk', path: '/bench/trivial', wrkArgs: C1, saturated: false },
  { name: 'cpu-200us', service: 'demo-service', tool: 'wrk', path: '/bench/cpu', wrkArgs: C1, saturated: false },
  { name: 'trivial-c16', service: 'demo-service', tool: 'wrk', path: '/bench/trivial', wrkArgs: C16, saturated: true },
  { name: 'cpu-200us-c16', service: 'demo-service', tool: 'wrk', path: '/bench/cpu', wrkArgs: C16, saturated: true },
  { name: 'h2c-trivial', service: 'axum08-server', tool: 'h2load', path: '/bench/trivial', wrkArgs: H2_C1, saturated: false },
  { name: 'grpc-unary', service: 'tonic-server', tool: 'h2load', path: '/shop.v1.Catalog/GetProduct', wrkArgs: H2_C1, saturated: false,
    body: GRPC_GET_PRODUCT, headers: ['content-type: application/grpc', 'te: trailers'] },
  // apps/fanout-service /fan: 7 client calls per request through every
  // hand-off of issue 8 (direct, tokio::spawn, a spawn in a spawn, join! of
  // two, spawn_blocking + reqwest::blocking, a std::thread + reqwest::blocking)
  // to a downstream the bench serves. 8 spans per request.
  { name: 'fanout', service: 'fanout-service', tool: 'wrk', path: '/fan/b1', wrkArgs: FANOUT_C8, saturated: true, downstream: true, context: true },
];

/**
 * Probes whose hits are the price of context tracking (parent links inside
 * the process), not of the spans themselves: tokio-spawn's two (a spawned
 * task inherits its parent's span) and reqwest::blocking's execute (the
 * calling thread's span handed to reqwest's runtime thread). The thread
 * creation tracepoint (sched_process_fork) is counted beside them: it is not
 * a uprobe (no trap), one run per thread a traced process makes.
 */
const CONTEXT_PROBES = new Set(['tokio-spawn/spawn', 'tokio-spawn/spawn_blocking', 'hyper-h1-client/reqwest_blocking_execute']);

function intEnv(name: string, def: number, min: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}=${v}: expected a number >= ${min}`);
  return n;
}

const ROUNDS = Math.floor(intEnv('BENCH_ROUNDS', 3, 1));
const SECONDS = Math.floor(intEnv('BENCH_SECONDS', 5, 1));
const CALIB_N = Math.floor(intEnv('BENCH_CALIB_N', 200_000, 1000));
const CALIB_REPS = 3;
const WARMUP_SECONDS = 1;
/** Past the end of a load run, the ring is drained (every 10 ms) and the last batch sealed: the stats file read must be this much newer. */
const DRAIN_WAIT_MS = 300;
const CPUS = os.availableParallelism();

// On these VMs a -c1 run lands in one of two modes depending on where the
// scheduler puts wrk and the tokio worker serving the connection: on the same
// CPU (~45k rps for /bench/trivial) or on different CPUs, where every request
// costs a cross-CPU wake-up of a halted vCPU (~10-20k rps). Which one a run
// gets is luck, and a baseline and an agent run in different modes compare
// nothing. So by default (BENCH_PIN=c1) wrk and the service share one CPU in
// the -c1 scenarios (the agent is not pinned and gets the other CPUs); the
// -c16 scenarios are never pinned. BENCH_PIN=none turns pinning off.
const PIN = (() => {
  const v = (process.env.BENCH_PIN ?? 'c1').trim() || 'c1';
  if (v !== 'none' && v !== 'c1') throw new Error(`BENCH_PIN=${v}: expected none or c1`);
  return v as 'none' | 'c1';
})();
const PIN_CPU = '0';

function pinned(sc: Scenario): boolean {
  return PIN === 'c1' && !sc.saturated;
}

/** Sets the CPU affinity of every thread of `pid` (taskset -a). */
function setAffinity(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
}

const SCENARIOS = (() => {
  const want = process.env.BENCH_SCENARIOS?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!want?.length) return ALL_SCENARIOS;
  const unknown = want.filter((w) => !ALL_SCENARIOS.some((s) => s.name === w));
  if (unknown.length) throw new Error(`BENCH_SCENARIOS: unknown ${unknown.join(', ')} (have ${ALL_SCENARIOS.map((s) => s.name).join(', ')})`);
  return ALL_SCENARIOS.filter((s) => want.includes(s.name));
})();

const ROOT = repoRoot();

function progress(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

// ---------------------------------------------------------------- cleanup

// Children started here directly (wrk, the calibration target). The service
// and the agents are tracked by test/helpers/procs, which SIGKILLs them on exit.
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function own(c: ChildProcess): ChildProcess {
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    progress(`${sig}: stopping`);
    process.exit(130); // the exit hooks kill every child
  });
}

// ---------------------------------------------------------------- wrk

interface WrkResult {
  rps: number;
  requests: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

function toMs(value: string, unit: string): number {
  const f = UNIT_MS[unit];
  if (f === undefined) throw new Error(`wrk: unknown time unit "${unit}"`);
  return Number(value) * f;
}

export function parseWrk(out: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const total = /^\s*(\d+) requests in [\d.]+\w+/m.exec(out);
  const p50 = /^\s+50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(out);
  const p99 = /^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(out);
  if (!rps || !total || !p50 || !p99) throw new Error(`cannot parse wrk output:\n${out}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    p50_ms: toMs(p50[1], p50[2]),
    p99_ms: toMs(p99[1], p99[2]),
    errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

function runWrk(wrkArgs: string[], seconds: number, url: string, cpu?: string): Promise<WrkResult> {
  const args = [...wrkArgs, '-d', `${seconds}s`, url];
  return new Promise((resolve, reject) => {
    const p = own(cpu === undefined
      ? spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('taskset', ['-c', cpu, 'wrk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const guard = setTimeout(() => { p.kill('SIGKILL'); }, (seconds + 20) * 1000);
    p.on('error', (e) => { clearTimeout(guard); reject(new Error(`wrk: ${e.message} (is wrk installed? run make setup)`)); });
    p.on('exit', (code, sig) => {
      clearTimeout(guard);
      if (code !== 0) return reject(new Error(`wrk ${args.join(' ')} exited with ${code ?? sig}: ${err}${out}`));
      try {
        const r = parseWrk(out);
        if (r.requests === 0) return reject(new Error(`wrk made no requests:\n${out}`));
        if (r.non2xx > 0 || r.errors > r.requests / 100) return reject(new Error(`wrk saw errors (${r.non2xx} non-2xx, ${r.errors} socket errors):\n${out}`));
        resolve(r);
      } catch (e) {
        reject(e);
      }
    });
  });
}

// ---------------------------------------------------------------- h2load

/** h2load's summary; percentiles come from its per-request log (--log-file). */
export function parseH2load(out: string, log: string): WrkResult {
  const rps = /^finished in [\d.]+\w+, ([\d.]+) req\/s/m.exec(out);
  const req = /^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out);
  const codes = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(out);
  if (!rps || !req || !codes) throw new Error(`cannot parse h2load output:\n${out}`);
  const us = log.split('\n').filter(Boolean).map((l) => Number(l.split('\t')[2])).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (us.length === 0) throw new Error('h2load wrote no per-request log');
  const pct = (q: number) => us[Math.min(us.length - 1, Math.floor(q * us.length))] / 1000;
  return {
    rps: Number(rps[1]),
    requests: Number(req[3]),
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    errors: Number(req[4]) + Number(req[5]) + Number(req[6]),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
  };
}

function runH2load(sc: Scenario, seconds: number, url: string, cpu?: string): Promise<WrkResult> {
  const dir = tempDir('otel-bench-h2load-');
  const logFile = path.join(dir, 'requests.log');
  const extra: string[] = [];
  if (sc.body) {
    fs.writeFileSync(path.join(dir, 'body'), sc.body);
    extra.push('-d', path.join(dir, 'body'));
  }
  for (const h of sc.headers ?? []) extra.push('-H', h);
  const args = [...sc.wrkArgs, '-D', String(seconds), `--log-file=${logFile}`, ...extra, url];
  return new Promise((resolve, reject) => {
    const p = own(cpu === undefined
      ? spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('taskset', ['-c', cpu, 'h2load', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const guard = setTimeout(() => { p.kill('SIGKILL'); }, (seconds + 20) * 1000);
    const done = () => { fs.rmSync(dir, { recursive: true, force: true }); tempDirs.delete(dir); };
    p.on('error', (e) => { clearTimeout(guard); done(); reject(new Error(`h2load: ${e.message} (is nghttp2-client installed? run make setup)`)); });
    p.on('exit', (code, sig) => {
      clearTimeout(guard);
      try {
        if (code !== 0) throw new Error(`h2load ${args.join(' ')} exited with ${code ?? sig}: ${err}${out}`);
        const r = parseH2load(out, fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
        if (r.requests === 0) throw new Error(`h2load made no requests:\n${out}`);
        if (r.non2xx > 0 || r.errors > r.requests / 100) throw new Error(`h2load saw errors (${r.non2xx} non-2xx, ${r.errors} failed):\n${out}`);
        resolve(r);
      } catch (e) {
        reject(e);
      } finally {
        done();
      }
    });
  });
}

/** One measured (or warm-up) load run of a scenario, with its tool. */
function runLoad(sc: Scenario, seconds: number, url: string, cpu?: string): Promise<WrkResult> {
  return sc.tool === 'h2load' ? runH2load(sc, seconds, url, cpu) : runWrk(sc.wrkArgs, seconds, url, cpu);
}

// ---------------------------------------------------------------- OTLP receiver

// The OTLP/gRPC receiver is a child process of its own (bench/receiver.ts): it
// only counts spans (a protobuf wire walk; the first request of each session
// is fully decoded as a check), and its CPU is neither the bench's nor the
// agent's. In the pinned scenarios it runs on the CPUs the service does not
// use, as a collector would run elsewhere.

// ---------------------------------------------------------------- agent stats

interface ProbeInfo { module: string; probe: string; symbol: string; site: string; hits: number }

interface StatsSnapshot {
  updated: number;
  hits: number;
  /** Events the ring buffer refused (it was full), all probes, since the agent started. */
  drops: number;
  badLayout: number;
  probes: ProbeInfo[];
  /** Runs of the thread-creation tracepoint for traced processes (bpf/process.bpf.c), since the agent started. */
  threadSpawnHits: number;
  /** The export stage's counters since the agent started (src/export/exporter.ts SpanSinkStats). */
  export: { submitted: number; exported: number; dropped: number; droppedQueueFull: number; rejected: number; lostAtShutdown: number; failedExports: number; queued: number };
}

function readStats(file: string): StatsSnapshot | null {
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      updated: string;
      probes: { module: string; probe: string; symbol: string; site: string; hits: number; drops: number; badLayout: number }[];
      export?: Partial<StatsSnapshot['export']>;
      state?: { threadSpawnHits?: number };
    };
    const sum = (k: 'hits' | 'drops' | 'badLayout') => s.probes.reduce((a, p) => a + (p[k] ?? 0), 0);
    const e = s.export ?? {};
    return {
      updated: Date.parse(s.updated), hits: sum('hits'), drops: sum('drops'), badLayout: sum('badLayout'),
      probes: s.probes.map((p) => ({ module: p.module, probe: p.probe, symbol: p.symbol, site: p.site, hits: p.hits })),
      threadSpawnHits: s.state?.threadSpawnHits ?? 0,
      export: {
        submitted: e.submitted ?? 0, exported: e.exported ?? 0, dropped: e.dropped ?? 0, droppedQueueFull: e.droppedQueueFull ?? 0,
        rejected: e.rejected ?? 0, lostAtShutdown: e.lostAtShutdown ?? 0, failedExports: e.failedExports ?? 0, queued: e.queued ?? 0,
      },
    };
  } catch {
    return null; // not written yet
  }
}

/**
 * Waits for a stats file the agent wrote after `after` (ms since the epoch):
 * its counters include everything before. With `drained`, also for one that
 * shows the export stage holding no span (everything submitted was exported
 * or counted as lost).
 */
async function freshStats(a: RunningAgent, after: number, timeoutMs = 5000, drained = false): Promise<StatsSnapshot> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = readStats(a.statsFile);
    if (s && s.updated > after && (!drained || s.export.queued === 0)) return s;
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) throw new Error(`agent exited:\n${a.stderr.text}`);
    if (Date.now() > end) throw new Error(`agent stats not refreshed${drained ? ' with an empty export queue' : ''} within ${timeoutMs} ms (${a.statsFile})`);
    await sleep(50);
  }
}

/** CPU time (user + system, every thread) and memory of a process, from /proc. */
interface ProcSample { cpuUs: number; rssKb: number; hwmKb: number }

const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

function procSample(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesized comm: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[14 - 3]) + Number(f[15 - 3]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuUs: (ticks * 1e6) / CLK_TCK, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------- calibration

interface Calibration {
  fn: string;
  costUs: number;
  n: number;
  firstInsn: string;
  reps: { withoutNs: number; withNs: number; hits: number }[];
}

function runTarget(bin: string, fn: string, n: number, attach: ((pid: number) => () => void) | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = own(spawn(bin, [String(n), fn], { stdio: ['pipe', 'pipe', 'pipe'] }));
    let out = '';
    let started = false;
    let detach: (() => void) | null = null;
    const guard = setTimeout(() => p.kill('SIGKILL'), 120_000);
    const finish = (e: Error | null, v?: number) => {
      clearTimeout(guard);
      try { detach?.(); } catch { /* already gone */ }
      detach = null;
      if (e) reject(e); else resolve(v!);
    };
    p.on('error', (e) => finish(e));
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!started && out.includes('ready\n')) {
        started = true;
        try {
          if (attach) detach = attach(p.pid!);
          p.stdin!.end('go\n');
        } catch (e) {
          p.kill('SIGKILL');
          finish(e as Error);
        }
      }
    });
    p.on('exit', (code, sig) => {
      const m = /ns_per_call ([\d.]+) calls (\d+)/.exec(out);
      if (code !== 0 || !m) return finish(new Error(`calibration target exited with ${code ?? sig}: ${out}`));
      finish(null, Number(m[1]));
    });
  });
}

/** The first instruction of `fnName` in `bin`, as objdump shows it (for the report only). */
function firstInstruction(bin: string, fnName: string): string {
  try {
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--disassemble=${fnName}`, bin], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /^\s+[0-9a-f]+:\s+(.+)$/m.exec(dis)?.[1].trim().replace(/\s+/g, ' ') ?? '?';
  } catch {
    return '?';
  }
}

/**
 * Cost of one uprobe hit: `fnName` in bench/calibrate/target.c called CALIB_N
 * times without and with bpf/calibrate.bpf.c attached (pid-filtered to the
 * target), CALIB_REPS times in alternating order; the median difference.
 */
async function calibrate(bin: string, rt: BpfRuntime, fnName: string, probeId: number): Promise<Calibration> {
  const fn = analyzeBinary(bin).functionsByName(fnName)[0];
  if (!fn) throw new Error(`${fnName} not found in ${bin}`);
  const attach = (pid: number) => {
    const link = rt.attach({ program: 'calibrate_hit', binaryPath: bin, fileOffsets: [fn.fileOffset], cookies: [BigInt(probeId)], pid });
    return () => link.detach();
  };
  const reps: Calibration['reps'] = [];
  for (let i = 0; i < CALIB_REPS; i++) {
    let withoutNs = 0;
    let withNs = 0;
    const before = rt.counters(probeId).hits;
    for (const probed of i % 2 === 0 ? [false, true] : [true, false]) {
      if (probed) withNs = await runTarget(bin, fnName, CALIB_N, attach);
      else withoutNs = await runTarget(bin, fnName, CALIB_N, null);
    }
    const hits = Number(rt.counters(probeId).hits - before);
    if (hits !== CALIB_N) throw new Error(`calibration of ${fnName}: the probe counted ${hits} hits, expected ${CALIB_N}`);
    reps.push({ withoutNs, withNs, hits });
    progress(`calibration ${fnName} ${i + 1}/${CALIB_REPS}: ${withoutNs.toFixed(1)} ns/call without, ${withNs.toFixed(1)} ns/call with the probe, ${hits} hits`);
  }
  const costUs = median(reps.map((r) => r.withNs - r.withoutNs)) / 1000;
  return { fn: fnName, costUs, n: CALIB_N, firstInsn: firstInstruction(bin, fnName), reps };
}

/** Both calibrations: `probed_fn` (a bare ret, single-stepped: the figure of record) and `probed_push_fn` (emulated push). */
async function calibrateAll(): Promise<{ main: Calibration; push: Calibration }> {
  const dir = tempDir('otel-bench-calibrate-');
  const bin = path.join(dir, 'calibrate-target');
  execFileSync('gcc', ['-O2', '-o', bin, path.join(ROOT, 'bench', 'calibrate', 'target.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const rt = new BpfRuntime([path.join(ROOT, 'build', 'bpf', 'calibrate.bpf.o')], 4096);
  try {
    rt.load();
    const main = await calibrate(bin, rt, 'probed_fn', 1);
    const push = await calibrate(bin, rt, 'probed_push_fn', 2);
    return { main, push };
  } finally {
    rt.close();
  }
}

/**
 * Whether the kernel emulates the probed instruction (x86 uprobes emulate
 * push reg, jmp/call/jcc and nop; most others, ret included, are single-stepped
 * out of line, which costs a second trap). Only push is recognized here: it
 * is what the entry of the hyper functions we probe starts with.
 */
function isPush(code: Buffer): boolean {
  if (code.length >= 1 && code[0] >= 0x50 && code[0] <= 0x57) return true;
  return code.length >= 2 && code[0] === 0x41 && code[1] >= 0x50 && code[1] <= 0x57;
}

/** Per probe of the service: whether its hits are emulated pushes (cheap) or single-stepped (the calibrated figure). */
function probeKinds(svcBin: string, probes: ProbeInfo[]): Map<string, 'push' | 'single-step'> {
  const info = analyzeBinary(svcBin);
  const kinds = new Map<string, 'push' | 'single-step'>();
  for (const p of probes) {
    let kind: 'push' | 'single-step' = 'single-step';
    if (p.site === 'entry') {
      const fns = info.functionsByName(p.symbol);
      if (fns.length > 0 && fns.every((f) => isPush(info.elf.readAtVaddr(f.vaddr, 2)))) kind = 'push';
    }
    kinds.set(p.probe, kind);
  }
  return kinds;
}

// ---------------------------------------------------------------- scenarios

interface RunRecord {
  round: number;
  mode: 'baseline' | 'agent';
  wrk: WrkResult;
  hits?: number;
  drops?: number;
  badLayout?: number;
  sessionRequests?: number;
  sessionSpans?: number;
  /** Agent CPU (user + system) over the measured run, µs, and the spans it exported in that time. */
  agentCpuUs?: number;
  spansExported?: number;
  /** The agent's peak RSS (VmHWM) at the end of the session, MiB. */
  agentRssMb?: number;
  /** Spans the agent lost in the session (warm-up included): ring drops + export drops (queue full, rejected, lost at shutdown). */
  spansLost?: number;
  exportDropped?: number;
  exportRejected?: number;
  failedExports?: number;
  probeHits?: Map<string, number>;
  /** Hits of the context-tracking probes (CONTEXT_PROBES) over the measured run. */
  contextHits?: number;
  threadSpawnHits?: number;
  probes?: ProbeInfo[];
}

async function baselineRun(sc: Scenario, url: string, round: number): Promise<RunRecord> {
  const cpu = pinned(sc) ? PIN_CPU : undefined;
  await runLoad(sc, WARMUP_SECONDS, url, cpu);
  const wrk = await runLoad(sc, SECONDS, url, cpu);
  return { round, mode: 'baseline', wrk };
}

async function agentRun(sc: Scenario, url: string, round: number, svc: Service, rx: ReceiverProcess): Promise<RunRecord> {
  await rx.newSession();
  const spans0 = (await rx.stats()).spans;
  const agent = startAgent(['--pid', String(svc.pid), '--exporter', 'otlp', '--endpoint', rx.endpoint, '--protocol', 'grpc']);
  tempDirs.add(path.dirname(agent.statsFile)); // removed on exit even if the bench is interrupted
  try {
    await Promise.race([
      agent.stderr.wait(/tracing process/, 60_000),
      agent.exited.then((c) => { throw new Error(`agent exited with ${c} before attaching:\n${agent.stderr.text}`); }),
    ]);
    const agentPid = agent.proc.pid!;
    const cpu = pinned(sc) ? PIN_CPU : undefined;
    const warm = await runLoad(sc, WARMUP_SECONDS, url, cpu);
    // Before and after the measured run, the agent has caught up (its export
    // queue is empty): its CPU time in between is what the run's spans cost it.
    const pre = await freshStats(agent, Date.now() + DRAIN_WAIT_MS, 30_000, true);
    const cpu0 = procSample(agentPid);
    const wrk = await runLoad(sc, SECONDS, url, cpu);
    const post = await freshStats(agent, Date.now() + DRAIN_WAIT_MS, 30_000, true);
    const cpu1 = procSample(agentPid);
    const rx1 = await rx.stats();
    const code = await agent.stop();
    if (code !== 0) throw new Error(`agent exited with ${code}:\n${agent.stderr.text}`);
    return {
      round, mode: 'agent', wrk,
      hits: post.hits - pre.hits,
      drops: post.drops - pre.drops,
      badLayout: post.badLayout - pre.badLayout,
      sessionRequests: warm.requests + wrk.requests,
      sessionSpans: rx1.spans - spans0,
      agentCpuUs: cpu1.cpuUs - cpu0.cpuUs,
      spansExported: post.export.exported - pre.export.exported,
      agentRssMb: Math.max(cpu1.hwmKb, cpu1.rssKb) / 1024,
      spansLost: post.drops + post.export.dropped,
      exportDropped: post.export.dropped,
      exportRejected: post.export.rejected,
      failedExports: post.export.failedExports,
      probeHits: new Map(post.probes.map((p) => [p.probe, p.hits - (pre.probes.find((q) => q.probe === p.probe)?.hits ?? 0)])),
      contextHits: post.probes.filter((p) => CONTEXT_PROBES.has(`${p.module}/${p.probe}`))
        .reduce((a, p) => a + p.hits - (pre.probes.find((q) => q.module === p.module && q.probe === p.probe)?.hits ?? 0), 0),
      threadSpawnHits: post.threadSpawnHits - pre.threadSpawnHits,
      probes: post.probes,
    };
  } finally {
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) {
      agent.proc.kill('SIGKILL');
      await agent.exited;
    }
    fs.rmSync(path.dirname(agent.statsFile), { recursive: true, force: true });
    tempDirs.delete(path.dirname(agent.statsFile));
  }
}

interface Side { rps: number; p50_ms: number; p99_ms: number }

interface ScenarioResult {
  scenario: string;
  baseline: Side;
  agent: Side;
  ratio_rps: number;
  probe_hits_per_request: number;
  uprobe_hit_cost_us: number;
  overhead_vs_floor: number;
  uprobe_hit_cost_emulated_us: number;
  uprobe_hit_cost_single_step_us: number;
  per_request_overhead_us: number;
  spans_per_request: number;
  /** Agent CPU (user + system, /proc/<pid>/stat) over the measured runs / spans it exported in them. */
  agent_cpu_us_per_span: number;
  /** The agent's peak RSS (VmHWM, MiB), the highest of the rounds. */
  agent_rss_mb: number;
  /** Spans the agent lost over its sessions (warm-ups included): ring drops + export queue drops + rejected + lost at shutdown. */
  spans_lost: number;
  wrk: string;
  rounds: number;
  seconds: number;
  machine: { kernel: string; cpus: number; date: string };
  /** Scenarios with `context` only: what context tracking costs per request (CONTEXT_PROBES; thread-creation tracepoint runs). */
  context?: { probe_hits_per_request: number; thread_tracepoint_runs_per_request: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function side(runs: RunRecord[]): Side {
  return {
    rps: round(mean(runs.map((r) => r.wrk.rps)), 1),
    p50_ms: round(median(runs.map((r) => r.wrk.p50_ms)), 3),
    p99_ms: round(median(runs.map((r) => r.wrk.p99_ms)), 3),
  };
}

/** Figures kept out of latest.json (its keys are fixed) but shown in latest.md. */
interface ScenarioDetail {
  /** Floor with each probe's hits priced by its instruction kind (emulated push vs single-stepped). */
  floorBySiteUs: number;
  hitsPerRequestByProbe: { probe: string; kind: string; perRequest: number }[];
  exportDropped: number;
  ringDrops: number;
  exportRejected: number;
  failedExports: number;
  spansExported: number;
  agentCpuUs: number;
  sessionSpans: number;
  sessionRequests: number;
}

function summarize(sc: Scenario, runs: RunRecord[], cal: { main: Calibration; push: Calibration },
  kinds: Map<string, 'push' | 'single-step'>, machine: ScenarioResult['machine']): { result: ScenarioResult; detail: ScenarioDetail } {
  const base = runs.filter((r) => r.mode === 'baseline');
  const ag = runs.filter((r) => r.mode === 'agent');
  const baseline = side(base);
  const agent = side(ag);
  // Unrounded means for the derived figures.
  const bRps = mean(base.map((r) => r.wrk.rps));
  const aRps = mean(ag.map((r) => r.wrk.rps));
  const measuredRequests = ag.reduce((a, r) => a + r.wrk.requests, 0);
  const hitsPerReq = ag.reduce((a, r) => a + r.hits!, 0) / measuredRequests;
  const sessionSpans = ag.reduce((a, r) => a + r.sessionSpans!, 0);
  const sessionRequests = ag.reduce((a, r) => a + r.sessionRequests!, 0);
  const agentCpuUs = ag.reduce((a, r) => a + r.agentCpuUs!, 0);
  const spansExported = ag.reduce((a, r) => a + r.spansExported!, 0);
  const addedUs = (1e6 / aRps - 1e6 / bRps) * (sc.saturated ? CPUS : 1);
  const byProbe = new Map<string, number>();
  for (const r of ag) for (const [p, h] of r.probeHits!) byProbe.set(p, (byProbe.get(p) ?? 0) + h);
  const hitsPerRequestByProbe = [...byProbe].map(([probe, h]) => ({ probe, kind: kinds.get(probe) ?? 'single-step', perRequest: h / measuredRequests }));
  const floorBySiteUs = hitsPerRequestByProbe.reduce((a, p) => a + p.perRequest * (p.kind === 'push' ? cal.push.costUs : cal.main.costUs), 0);
  // The floor this kernel allows for the hits the agent actually takes: each
  // probe's hits priced by the calibrated cost of its instruction kind.
  const floorUs = floorBySiteUs;
  const costPerHitUs = hitsPerReq > 0 ? floorUs / hitsPerReq : cal.main.costUs;

  return {
    result: {
      scenario: sc.name,
      baseline,
      agent,
      ratio_rps: round(aRps / bRps, 3),
      probe_hits_per_request: round(hitsPerReq, 3),
      uprobe_hit_cost_us: round(costPerHitUs, 2),
      overhead_vs_floor: round(floorUs > 0 ? addedUs / floorUs : NaN, 2),
      uprobe_hit_cost_emulated_us: round(cal.push.costUs, 2),
      uprobe_hit_cost_single_step_us: round(cal.main.costUs, 2),
      per_request_overhead_us: round(addedUs, 2),
      spans_per_request: round(sessionSpans / sessionRequests, 3),
      agent_cpu_us_per_span: round(spansExported > 0 ? agentCpuUs / spansExported : NaN, 2),
      agent_rss_mb: round(Math.max(...ag.map((r) => r.agentRssMb!)), 1),
      spans_lost: ag.reduce((a, r) => a + r.spansLost!, 0),
      wrk: [...(pinned(sc) ? ['taskset', '-c', PIN_CPU] : []), sc.tool, ...sc.wrkArgs, sc.tool === 'wrk' ? '-d' : '-D', sc.tool === 'wrk' ? `${SECONDS}s` : String(SECONDS)].join(' '),
      rounds: ROUNDS,
      seconds: SECONDS,
      machine,
      ...(sc.context ? { context: {
        probe_hits_per_request: round(ag.reduce((a, r) => a + r.contextHits!, 0) / measuredRequests, 3),
        thread_tracepoint_runs_per_request: round(ag.reduce((a, r) => a + r.threadSpawnHits!, 0) / measuredRequests, 3),
      } } : {}),
    },
    detail: {
      floorBySiteUs,
      hitsPerRequestByProbe,
      exportDropped: ag.reduce((a, r) => a + r.exportDropped!, 0),
      ringDrops: ag.reduce((a, r) => a + r.spansLost! - r.exportDropped!, 0),
      exportRejected: ag.reduce((a, r) => a + r.exportRejected!, 0),
      failedExports: ag.reduce((a, r) => a + r.failedExports!, 0),
      spansExported,
      agentCpuUs,
      sessionSpans,
      sessionRequests,
    },
  };
}

// ---------------------------------------------------------------- report

function markdown(results: ScenarioResult[], details: Map<string, ScenarioDetail>, perScenario: Map<string, RunRecord[]>,
  cal: { main: Calibration; push: Calibration }, elapsedS: number): string {
  const m = results[0]?.machine;
  const L: string[] = [];
  L.push('# Benchmark: the fixture services with and without otel-rust-agent', '');
  if (m) L.push(`${m.date}, kernel ${m.kernel}, ${m.cpus} CPUs; ${ROUNDS} rounds × ${SECONDS} s per side and scenario; the whole run took ${elapsedS.toFixed(0)} s.`, '');
  L.push('| scenario | wrk | baseline rps | agent rps | ratio_rps | baseline p50 / p99 ms | agent p50 / p99 ms | hits/req | spans/req | added µs/req | floor µs/req | overhead_vs_floor |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    L.push(`| ${r.scenario} | \`${r.wrk}\` | ${r.baseline.rps.toFixed(0)} | ${r.agent.rps.toFixed(0)} | ${r.ratio_rps.toFixed(3)} | ` +
      `${r.baseline.p50_ms.toFixed(3)} / ${r.baseline.p99_ms.toFixed(3)} | ${r.agent.p50_ms.toFixed(3)} / ${r.agent.p99_ms.toFixed(3)} | ` +
      `${r.probe_hits_per_request.toFixed(3)} | ${r.spans_per_request.toFixed(3)} | ${r.per_request_overhead_us.toFixed(2)} | ` +
      `${(r.probe_hits_per_request * r.uprobe_hit_cost_us).toFixed(2)} | ${r.overhead_vs_floor.toFixed(2)} |`);
  }
  L.push('', '### The agent process itself', '');
  L.push('| scenario | agent_cpu_us_per_span | agent CPU s / spans exported (measured runs) | agent_rss_mb (peak) | spans_lost | of which ring drops / export drops (queue full, rejected, at shutdown) | rejected | failed export requests |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const d = details.get(r.scenario)!;
    L.push(`| ${r.scenario} | ${r.agent_cpu_us_per_span.toFixed(2)} | ${(d.agentCpuUs / 1e6).toFixed(2)} / ${d.spansExported} | ${r.agent_rss_mb.toFixed(1)} | ` +
      `${r.spans_lost} | ${d.ringDrops} / ${d.exportDropped} | ${d.exportRejected} | ${d.failedExports} |`);
  }
  L.push('', `Calibrated cost of one uprobe hit on this machine: **${cal.push.costUs.toFixed(2)} µs** on an emulated \`${cal.push.firstInsn}\` (where the agent's probes sit: the first instruction of the probed functions), **${cal.main.costUs.toFixed(2)} µs** on a single-stepped \`${cal.main.firstInsn}\`. \`uprobe_hit_cost_us\` is the cost per hit of the probes the agent actually hit (each probe priced by its instruction kind); floor = hits/req × that.`, '');

  L.push('### Floor by instruction kind (not in latest.json)', '');
  L.push(`On x86 the kernel emulates a probed \`push\` (${cal.push.costUs.toFixed(2)} µs per hit here) but single-steps most other instructions out of line, \`ret\` included, which adds a debug trap and on this VM costs far more (${cal.main.costUs.toFixed(2)} µs). ` +
    'The hyper functions our entry probes sit on start with `push`, so pricing each probe by its kind gives a lower, truer floor:', '');
  L.push('| scenario | hits/req by probe (kind) | floor by kind µs/req | added µs/req | added / floor by kind | spans exported / requests (session) | spans dropped by the agent |');
  L.push('|---|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const d = details.get(r.scenario)!;
    L.push(`| ${r.scenario} | ${d.hitsPerRequestByProbe.map((p) => `${p.probe} ${p.perRequest.toFixed(3)} (${p.kind})`).join(', ')} | ` +
      `${d.floorBySiteUs.toFixed(2)} | ${r.per_request_overhead_us.toFixed(2)} | ${(r.per_request_overhead_us / d.floorBySiteUs).toFixed(2)} | ` +
      `${d.sessionSpans} / ${d.sessionRequests} | ${d.exportDropped} |`);
  }
  L.push('');

  const ctxResults = results.filter((r) => r.context);
  if (ctxResults.length) {
    L.push('## What context tracking costs (issue 8)', '');
    L.push('Parent links inside the process: hits of `tokio-spawn/spawn` and `spawn_blocking` (a spawned task inherits its parent\'s span) and `hyper-h1-client/reqwest_blocking_execute` (a reqwest::blocking call hands its span to reqwest\'s runtime thread), all on emulated `push` entries; and runs of the `sched_process_fork` tracepoint for traced processes (a std::thread inherits the span of the task that made it; a tracepoint, not a trap). The req/s ratio is the whole agent\'s (with / without), context tracking included.', '');
    L.push('| scenario | context probe hits/req | thread tracepoint runs/req | all probe hits/req | baseline rps | agent rps | ratio_rps |');
    L.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of ctxResults) {
      L.push(`| ${r.scenario} | ${r.context!.probe_hits_per_request.toFixed(3)} | ${r.context!.thread_tracepoint_runs_per_request.toFixed(3)} | ${r.probe_hits_per_request.toFixed(3)} | ` +
        `${r.baseline.rps.toFixed(0)} | ${r.agent.rps.toFixed(0)} | ${r.ratio_rps.toFixed(3)} |`);
    }
    L.push('');
  }

  L.push('## How it was measured', '');
  L.push(
    '- One process per fixture serves its scenarios: `demo-service` (apps/demo: axum 0.8 on hyper 1, HTTP/1.1) the wrk ones, `axum08-server` (HTTP/2 over h2c) `h2c-trivial`, `tonic-server` (tonic 0.14) `grpc-unary`, `fanout-service` (axum 0.8 + reqwest 0.12, 7 client calls per request to a keep-alive HTTP/1.1 downstream served by the bench process on loopback) `fanout`; each is warmed up once when its first scenario starts. Load comes from the same machine, over loopback: `wrk` for HTTP/1.1, `h2load` (nghttp2-client, from Debian; it speaks h2c and, with a request body and headers, gRPC) for HTTP/2. Its percentiles are computed from its per-request log (`--log-file`).',
    '- `h2c-trivial` = `GET /bench/trivial` over h2c with prior knowledge, one connection and one stream at a time (`h2load -t1 -c1 -m1`: the HTTP/2 counterpart of `wrk -c1`). `grpc-unary` = the unary `shop.v1.Catalog/GetProduct` call (a 7-byte length-prefixed GetProductRequest, `content-type: application/grpc`, `te: trailers`), the same way.',
    '- Scenarios: `trivial` = `GET /bench/trivial`; `cpu-200us` = `GET /bench/cpu` (about 200 µs of CPU per request). The plain names use `wrk -t1 -c1 --latency` (one keep-alive connection: latency-bound, the per-request overhead shows directly); the `-c16` ones use `wrk -t2 -c16 --latency` (saturation: throughput).',
    PIN === 'c1'
      ? `- CPU pinning (BENCH_PIN=c1, the default): in the \`-c1\` scenarios wrk and every thread of the service run on CPU ${PIN_CPU} only (the agent is not pinned and gets the other CPUs), so no request pays a cross-CPU wake-up. Unpinned, a -c1 run on these VMs lands by chance in a same-CPU mode (~45k rps for /bench/trivial) or a cross-CPU mode (~10-20k rps), which makes a baseline and an agent run incomparable. The \`-c16\` scenarios are not pinned. BENCH_PIN=none turns pinning off.`
      : '- No CPU pinning (BENCH_PIN=none). Caution: on these VMs a `-c1` run lands by chance in a same-CPU mode (wrk and the tokio worker on one CPU: ~45k rps for /bench/trivial) or a cross-CPU mode (~10-20k rps, every request wakes a halted vCPU); see the per-run table. The default, BENCH_PIN=c1, removes that noise.',
    `- Each scenario runs ${ROUNDS} rounds; a round is one baseline run and one agent run back to back, and the order alternates between rounds (baseline first, then agent first, ...) so slow drift cancels out.`,
    '- Baseline: no agent process at all. Agent: `otel-rust-agent --pid <service> --exporter otlp --protocol grpc --endpoint <receiver>` is started, the bench waits for its "tracing process" line, and it is stopped with SIGINT (and waited for) after the run. The OTLP/gRPC receiver is a process of its own (bench/receiver.ts) and only counts spans (a protobuf wire walk; the first request of each session is fully decoded as a check), so the agent\'s export cost is included while a collector\'s decoding cost is not' +
      (PIN === 'c1' ? `; in the pinned scenarios it runs on the CPUs the service and wrk do not use (a collector runs elsewhere), in the -c16 ones unpinned.` : '.'),
    `- \`agent_cpu_us_per_span\` = the agent process\'s CPU time (utime + stime of /proc/<pid>/stat, every thread, clock ticks of ${(1e6 / CLK_TCK).toFixed(0)} µs) over the measured runs / spans it exported in them (its \`export.exported\` counter). Both ends are read once the agent has caught up: a stats file written at least ${DRAIN_WAIT_MS} ms after the load stopped and showing an empty export queue, so the span pipeline\'s whole cost (ring drain, decode, assembly, encoding, sending) for those spans falls inside.`,
    '- `agent_rss_mb` = the agent\'s peak resident set (VmHWM of /proc/<pid>/status, MiB) at the end of its session, the highest of the rounds: start-up (binary analysis, BPF loading) included.',
    '- `spans_lost` = over the agent sessions (warm-ups included), events the ring buffer refused (the probes\' `drops`) + spans the export stage lost (`export.dropped`: queue full, rejected by the receiver, left at shutdown), read once the export queue was empty. A ring drop is counted as one lost span.',
    `- Both sides get a ${WARMUP_SECONDS} s warm-up wrk with the same arguments, then the measured ${SECONDS} s run.`,
    '- Per side: `rps` = mean of the rounds\' Requests/sec; `p50_ms`, `p99_ms` = median over rounds of wrk\'s `--latency` percentiles (converted to ms).',
    '- `ratio_rps` = agent.rps / baseline.rps.',
    '- `probe_hits_per_request` = (sum over all probes of the hit counters\' increase during the measured runs, read from the agent\'s `--stats-file` once it was rewritten after the warm-up and again after the run) / (wrk\'s total requests of those runs).',
    '- `spans_per_request` = spans received by the receiver during each agent session / requests wrk made in that session (warm-up + measured run), summed over rounds.',
    '- `per_request_overhead_us` (added µs per request):',
    '  - `-c1` scenarios (wall time, one request at a time): `1e6/agent.rps − 1e6/baseline.rps`.',
    `  - \`-c16\` scenarios (saturated, CPU-time view): \`(1e6/agent.rps − 1e6/baseline.rps) × CPUs\`, CPUs = ${CPUS} (the CPUs the service can use; wrk's thread count plays no part). At saturation every CPU is busy, so the extra wall time per request times the CPU count is the extra CPU time each request costs. It includes the agent's own user-space work (ring buffer drain, span assembly, export), which competes with the service and wrk for the same ${CPUS} CPUs.`,
    '- `overhead_vs_floor` = `per_request_overhead_us / (probe_hits_per_request × uprobe_hit_cost_us)`, where `uprobe_hit_cost_us` prices each probe\'s hits by the calibrated cost of the instruction it sits on (emulated push or single-stepped). 1.0 means the agent costs exactly what the kernel charges for its traps; above 1 is everything else (the BPF programs\' real work, the agent process competing for the same CPUs, wake-ups, caches). Both raw calibrations are in the JSON as `uprobe_hit_cost_emulated_us` and `uprobe_hit_cost_single_step_us`.',
    '',
  );

  L.push('## Calibration: cost of one uprobe hit', '');
  L.push(
    `\`bench/calibrate/target.c\` (compiled with \`gcc -O2\` into a temp dir at bench time) calls a function ${cal.main.n} times in a loop timed with CLOCK_MONOTONIC. It runs once without a probe and once with \`bpf/calibrate.bpf.c\` attached at the function's entry (uprobe_multi link, pid-filtered to that process; the program only counts the hit in \`probe_stats\`, the same prologue as the real probes). ` +
    `The counter is checked to equal ${cal.main.n} every time. ${CALIB_REPS} repetitions with the order alternating; the cost is the median of (with − without) ns per call / 1000. ` +
    `\`probed_fn\` (first instruction \`${cal.main.firstInsn}\`) gives \`uprobe_hit_cost_us\`; \`probed_push_fn\` (first instruction \`${cal.push.firstInsn}\`) gives the emulated-entry figure.`,
    '',
    '| function | rep | without ns/call | with ns/call | hits | cost µs |',
    '|---|---:|---:|---:|---:|---:|',
    ...[cal.main, cal.push].flatMap((c) => c.reps.map((r, i) =>
      `| ${c.fn} | ${i + 1} | ${r.withoutNs.toFixed(1)} | ${r.withNs.toFixed(1)} | ${r.hits} | ${((r.withNs - r.withoutNs) / 1000).toFixed(2)} |`)),
    '',
  );

  L.push('## Every run', '');
  L.push('| scenario | round | side | rps | p50 ms | p99 ms | requests | probe hits | hits/req | spans/req (session) | agent µs/span | agent RSS MiB | spans lost |');
  L.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, runs] of perScenario) {
    for (const r of runs) {
      const a = r.mode === 'agent';
      L.push(`| ${name} | ${r.round + 1} | ${r.mode} | ${r.wrk.rps.toFixed(0)} | ${r.wrk.p50_ms.toFixed(3)} | ${r.wrk.p99_ms.toFixed(3)} | ${r.wrk.requests} | ` +
        `${a ? r.hits : ''} | ${a ? (r.hits! / r.wrk.requests).toFixed(3) : ''} | ${a ? (r.sessionSpans! / r.sessionRequests!).toFixed(3) : ''} | ` +
        `${a ? (r.agentCpuUs! / r.spansExported!).toFixed(2) : ''} | ${a ? r.agentRssMb!.toFixed(1) : ''} | ${a ? r.spansLost : ''} |`);
    }
  }
  L.push('', 'Reproduce: `make bench` (as root). `BENCH_ROUNDS`, `BENCH_SECONDS`, `BENCH_SCENARIOS` (comma-separated names) and `BENCH_CALIB_N` change the defaults; `BENCH_PIN=none` turns off the CPU pinning of the -c1 scenarios.', '');
  return L.join('\n');
}

// ---------------------------------------------------------------- downstream

// The fan-out fixture's downstream: a keep-alive HTTP/1.1 server on loopback
// in this process, answering every request with "ok" (the fixture's calls are
// what is measured, not the downstream).
let downstream: http.Server | undefined;

async function downstreamPort(): Promise<number> {
  if (!downstream) {
    const d = http.createServer((_req, res) => { res.end('ok'); });
    d.keepAliveTimeout = 120_000;
    await new Promise<void>((r) => d.listen(0, '127.0.0.1', r));
    downstream = d;
  }
  return (downstream.address() as AddressInfo).port;
}

async function closeDownstream(): Promise<void> {
  const d = downstream;
  downstream = undefined;
  if (!d) return;
  d.closeAllConnections();
  await new Promise((r) => d.close(r));
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const t0 = Date.now();
  if (process.getuid?.() !== 0) throw new Error('run the benchmark as root (it loads eBPF programs)');
  for (const f of [path.join(ROOT, 'build', 'bpf', 'calibrate.bpf.o'), path.join(ROOT, 'build', 'bpf', 'hyper-h1-server.bpf.o')])
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run make build`);
  const machine = { kernel: os.release(), cpus: CPUS, date: new Date().toISOString() };
  progress(`${SCENARIOS.length} scenarios × ${ROUNDS} rounds × ${SECONDS} s, ${CPUS} CPUs, kernel ${machine.kernel}`);

  const cal = await calibrateAll();
  progress(`uprobe hit cost: ${cal.main.costUs.toFixed(2)} µs single-stepped (${cal.main.firstInsn}), ${cal.push.costUs.toFixed(2)} µs emulated (${cal.push.firstInsn})`);

  const rx = await ReceiverProcess.start();
  const perScenario = new Map<string, RunRecord[]>();
  const results: ScenarioResult[] = [];
  const details = new Map<string, ScenarioDetail>();
  // One process per fixture, started when its first scenario comes and warmed up once.
  const services = new Map<AppName, Service>();
  const kindsOf = new Map<AppName, Map<string, 'push' | 'single-step'>>();
  const serviceFor = async (sc: Scenario): Promise<Service> => {
    let svc = services.get(sc.service);
    if (!svc) {
      svc = await startService(serviceBinary(sc.service), sc.downstream ? { FANOUT_DOWNSTREAM: `http://127.0.0.1:${await downstreamPort()}` } : {});
      services.set(sc.service, svc);
      const base = `http://127.0.0.1:${svc.port}`;
      if (sc.service === 'demo-service') for (const p of ['/bench/trivial', '/bench/cpu']) await runWrk(C16, 1, base + p);
      else if (sc.tool === 'wrk') await runWrk(sc.wrkArgs, 1, base + sc.path);
      else await runLoad({ ...sc, wrkArgs: ['-t1', '-c4', '-m4'] }, 1, base + sc.path);
    }
    return svc;
  };
  try {
    for (const sc of SCENARIOS) {
      const svc = await serviceFor(sc);
      const svcBin = serviceBinary(sc.service);
      const url = `http://127.0.0.1:${svc.port}${sc.path}`;
      const runs: RunRecord[] = [];
      setAffinity(svc.pid, pinned(sc) ? PIN_CPU : `0-${CPUS - 1}`);
      setAffinity(rx.pid, pinned(sc) && CPUS > 1 ? `${Number(PIN_CPU) === 0 ? 1 : 0}-${CPUS - 1}` : `0-${CPUS - 1}`);
      for (let r = 0; r < ROUNDS; r++) {
        for (const mode of r % 2 === 0 ? ['baseline', 'agent'] as const : ['agent', 'baseline'] as const) {
          const rec = mode === 'baseline' ? await baselineRun(sc, url, r) : await agentRun(sc, url, r, svc, rx);
          runs.push(rec);
          if (mode === 'agent' && !kindsOf.has(sc.service)) kindsOf.set(sc.service, probeKinds(svcBin, rec.probes!));
          progress(`${sc.name} round ${r + 1}/${ROUNDS} ${mode}: ${rec.wrk.rps.toFixed(0)} rps, p50 ${rec.wrk.p50_ms.toFixed(3)} ms, p99 ${rec.wrk.p99_ms.toFixed(3)} ms` +
            (mode === 'agent' ? `, ${(rec.hits! / rec.wrk.requests).toFixed(3)} hits/req, ${(rec.sessionSpans! / rec.sessionRequests!).toFixed(3)} spans/req` +
              (sc.context ? `, context tracking ${(rec.contextHits! / rec.wrk.requests).toFixed(3)} hits/req + ${(rec.threadSpawnHits! / rec.wrk.requests).toFixed(3)} thread tracepoint runs/req` : '') +
              (rec.drops ? `, ${rec.drops} ring drops` : '') + (rec.badLayout ? `, ${rec.badLayout} bad layouts` : '') +
              `, agent ${(rec.agentCpuUs! / rec.spansExported!).toFixed(2)} µs CPU/span, peak RSS ${rec.agentRssMb!.toFixed(1)} MiB, ${rec.spansLost} spans lost` +
              (rec.exportDropped ? ` (${rec.exportDropped} by the export stage)` : '') : ''));
        }
      }
      perScenario.set(sc.name, runs);
      const { result, detail } = summarize(sc, runs, cal, kindsOf.get(sc.service)!, machine);
      results.push(result);
      details.set(sc.name, detail);
      progress(`${sc.name}: ratio ${result.ratio_rps}, ${result.per_request_overhead_us} µs/req added, overhead vs floor ${result.overhead_vs_floor}` +
        (result.context ? `; context tracking: ${result.context.probe_hits_per_request} probe hits/req, ${result.context.thread_tracepoint_runs_per_request} thread tracepoint runs/req` : ''));
      const rs = await rx.stats();
      if (rs.sample) progress(`${sc.name}: first span of the last session: "${rs.sample.name}" (kind ${rs.sample.kind}, route ${rs.sample.route || '-'})`);
    }
    const rs = await rx.stats();
    if (rs.bad) progress(`warning: the receiver could not read ${rs.bad} export requests`);
  } finally {
    for (const svc of services.values()) await svc.stop('SIGTERM');
    rx.close();
    await closeDownstream();
  }

  const elapsedS = (Date.now() - t0) / 1000;
  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify(results, null, 2);
  fs.writeFileSync(path.join(outDir, 'latest.json'), json + '\n');
  fs.writeFileSync(path.join(outDir, 'latest.md'), markdown(results, details, perScenario, cal, elapsedS));
  process.stdout.write(json + '\n');
  progress(`done in ${elapsedS.toFixed(0)} s; wrote bench/results/latest.json and latest.md`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`bench: failed: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}

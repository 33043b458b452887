// `make bench-pipeline`: the agent's user-space pipeline alone, independent
// of any service: real ring records (recorded from the demo service under
// wrk, or a recording given in BENCH_EVENTS) replayed through
// decode -> span assembly -> OTLP encoding -> gRPC send to a local receiver
// (a child process on another CPU), on one core. Reports spans per second per
// core of CPU time, and the cost of each stage.
//
//   node dist/bench/pipeline.js     (as root when it has to record: the agent loads eBPF)
//
// Environment:
//   BENCH_EVENTS        a recording to replay (OTEL_RUST_AGENT_RECORD_EVENTS of a run); default: record one now
//                       (its FILE.mem, the process-memory reads of that run, answers the replay's reads)
//   BENCH_RECORD        what to record when BENCH_EVENTS is unset: demo (default) or reqwest-call (client spans)
//   BENCH_SPANS         spans per measured replay (default 1,000,000)
//   BENCH_PROFILE=1     also write a CPU profile of the full pipeline (bench/results/pipeline.cpuprofile)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Session } from 'node:inspector';
import { readRecording, readRecordedMemory } from '../src/events/recording';
import { memoryTap } from '../src/targets/memory';
import { SpanAssembler } from '../src/spans/assembler';
import { LIBRARIES } from '../src/libs';
import { OtlpSpanSink } from '../src/export/exporter';
import type { SpanSink } from '../src/export/exporter';
import type { SpanRecord } from '../src/spans/record';
import type { ProcessResource } from '../src/spans/types';
import { WallClock } from '../src/util/clock';
import { startService, attachAgent, serviceBinary } from '../test/helpers/procs';
import { repoRoot } from '../test/helpers/rustbuild';
import { ReceiverProcess } from './receiver';

const ROOT = repoRoot();
const TARGET_SPANS = Number(process.env.BENCH_SPANS ?? 1_000_000);
const CPUS = os.availableParallelism();

function progress(msg: string): void {
  process.stderr.write(`bench-pipeline: ${msg}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * BENCH_RECORD=reqwest-call: records reqwest12-client instead, one reqwest
 * call per request to an untraced demo-service (a SERVER and a CLIENT span
 * per request), as the bench's reqwest-call scenario.
 */
async function recordReqwest(file: string): Promise<void> {
  const down = await startService(serviceBinary('demo-service'));
  const svc = await startService(serviceBinary('reqwest12-client'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--exporter', 'none'], { OTEL_RUST_AGENT_RECORD_EVENTS: file });
  try {
    execFileSync('wrk', ['-t1', '-c4', '-d2s', `http://127.0.0.1:${svc.port}/call?n=1&mode=async&url=http://127.0.0.1:${down.port}/bench/trivial`], { stdio: 'ignore' });
    await sleep(200);
  } finally {
    await agent.stop();
    await svc.stop();
    await down.stop();
  }
}

/** Records the demo service's ring records under a mix of requests. */
async function record(file: string): Promise<void> {
  if (process.env.BENCH_RECORD === 'reqwest-call') return recordReqwest(file);
  const svc = await startService(serviceBinary('demo-service'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--exporter', 'none'], { OTEL_RUST_AGENT_RECORD_EVENTS: file });
  try {
    const base = `http://127.0.0.1:${svc.port}`;
    const runs: string[][] = [
      ['-t1', '-c4', '-d1s', `${base}/bench/trivial`],
      ['-t1', '-c4', '-d1s', '-H', 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0', `${base}/users/42?verbose=true&page=3`],
      ['-t1', '-c4', '-d1s', '-H', 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '-H', 'tracestate: vendor=abc', `${base}/users/7`],
      ['-t1', '-c4', '-d1s', `${base}/fail`],
    ];
    for (const args of runs) execFileSync('wrk', args, { stdio: 'ignore' });
    await sleep(200);
  } finally {
    await agent.stop();
    await svc.stop();
  }
}

/** A sink that only counts (the decode + assembly stages alone). */
class CountingSink implements SpanSink {
  n = 0;
  submit(): void { this.n++; }
  async flush(): Promise<void> { /* nothing */ }
  async shutdown(): Promise<void> { /* nothing */ }
  stats() { return { submitted: this.n, exported: this.n, dropped: 0, droppedQueueFull: 0, rejected: 0, lostAtShutdown: 0, failedExports: 0, requests: 0, queued: 0 }; }
}

interface StageResult { stage: string; spans: number; cpuMs: number; wallMs: number; usPerSpan: number; spansPerCoreSecond: number }

async function replay(stage: string, data: Buffer, records: { off: number; len: number }[], sink: SpanSink,
  waitFor?: () => Promise<boolean>): Promise<StageResult> {
  const clock = new WallClock();
  const resources = new Map<number, ProcessResource>();
  const resourceOf = (pid: number): ProcessResource => {
    let r = resources.get(pid);
    if (!r) {
      r = { pid, attributes: {
        'service.name': 'demo-service', 'process.pid': pid, 'process.executable.name': 'demo-service',
        'process.executable.path': '/srv/demo-service', 'process.command': '/srv/demo-service', 'process.runtime.name': 'rustc',
        'process.runtime.version': '1.95.0', 'host.name': os.hostname(), 'telemetry.sdk.name': 'otel-rust-agent',
        'telemetry.sdk.language': 'rust', 'telemetry.sdk.version': '0.1.0',
      } };
      resources.set(pid, r);
    }
    return r;
  };
  let spans = 0;
  const asm = new SpanAssembler(LIBRARIES, {
    toUnixNano: (ns) => clock.toUnixNano(ns),
    clock: clock.offset,
    emit: (rec: SpanRecord) => { spans++; sink.submit(rec, resourceOf(rec.pid)); },
    libraryActive: () => true,
  });
  const dv = new DataView(data.buffer, data.byteOffset, data.length);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let errors = 0;
  while (spans < TARGET_SPANS) {
    // In chunks, as the agent drains the ring: the transport runs in between.
    for (let i = 0; i < records.length && spans < TARGET_SPANS; i++) {
      const r = records[i];
      try { asm.handle(dv, r.off, r.len); } catch { errors++; }
      if ((i & 4095) === 4095) {
        await new Promise((res) => setImmediate(res));
        while (sink.stats().queued > 40_000) await new Promise((res) => setTimeout(res, 1));
      }
    }
  }
  await sink.flush();
  if (waitFor) while (!(await waitFor())) await sleep(5);
  const c = process.cpuUsage(c0);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = (c.user + c.system) / 1000;
  if (errors) progress(`${stage}: ${errors} records could not be decoded`);
  return { stage, spans, cpuMs, wallMs, usPerSpan: (cpuMs * 1000) / spans, spansPerCoreSecond: spans / (cpuMs / 1000) };
}

async function main(): Promise<void> {
  // This process replays on CPU 0; the receiver runs on the other CPUs.
  if (CPUS > 1) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  let file = process.env.BENCH_EVENTS;
  if (!file) {
    file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pipeline-')), 'events.bin');
    progress('recording ring records of the demo service under wrk (4 × 1 s)');
    await record(file);
  }
  const { data, records } = readRecording(file);
  // The route tables etc. the agent read from the (now gone) process while recording.
  memoryTap.replay = readRecordedMemory(file);
  progress(`${records.length} records (${(data.length / 1e6).toFixed(1)} MB) from ${file}`);

  const results: StageResult[] = [];
  // Warm-up (JIT), then the measured runs.
  await replay('warm-up', data, records, new CountingSink());
  results.push(await replay('decode + assemble', data, records, new CountingSink()));
  progress(`${results[0].stage}: ${results[0].usPerSpan.toFixed(3)} µs/span`);

  const encodeOnly = new OtlpSpanSink({ exporter: 'otlp', protocol: 'grpc', headers: {} }, () => ({
    send: async () => ({ kind: 'ok', rejected: 0 }), close: () => undefined,
  }));
  results.push(await replay('decode + assemble + encode', data, records, encodeOnly));
  progress(`${results[1].stage}: ${results[1].usPerSpan.toFixed(3)} µs/span`);

  const rx = await ReceiverProcess.start(CPUS > 1 ? `1-${CPUS - 1}` : undefined);
  const sink = new OtlpSpanSink({ exporter: 'otlp', protocol: 'grpc', endpoint: rx.endpoint, headers: {} });
  const before = (await rx.stats()).spans;
  let session: Session | undefined;
  if (process.env.BENCH_PROFILE === '1') {
    session = new Session();
    session.connect();
    await new Promise<void>((r) => session!.post('Profiler.enable', () => session!.post('Profiler.start', () => r())));
  }
  const full = await replay('decode + assemble + encode + send (gRPC)', data, records, sink,
    async () => (await rx.stats()).spans - before >= TARGET_SPANS);
  if (session) {
    const prof = await new Promise<unknown>((r) => session!.post('Profiler.stop', (_e, p) => r((p as { profile: unknown }).profile)));
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'pipeline.cpuprofile'), JSON.stringify(prof));
    progress('CPU profile written to bench/results/pipeline.cpuprofile');
  }
  results.push(full);
  const got = (await rx.stats()).spans - before;
  progress(`${full.stage}: ${full.usPerSpan.toFixed(3)} µs/span, ${Math.round(full.spansPerCoreSecond)} spans/s per core; receiver got ${got}`);
  const st = sink.stats();
  await sink.shutdown();
  rx.close();

  const out = {
    date: new Date().toISOString(),
    kernel: os.release(),
    cpus: CPUS,
    node: process.version,
    records: records.length,
    spans_per_replay: TARGET_SPANS,
    spans_per_second_one_core: Math.round(full.spansPerCoreSecond),
    agent_cpu_us_per_span: Number(full.usPerSpan.toFixed(3)),
    received: got,
    lost: st.dropped,
    stages: results.map((r) => ({ ...r, cpuMs: Math.round(r.cpuMs), wallMs: Math.round(r.wallMs), usPerSpan: Number(r.usPerSpan.toFixed(3)), spansPerCoreSecond: Math.round(r.spansPerCoreSecond) })),
  };
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'pipeline.json'), JSON.stringify(out, null, 2) + '\n');
  const md = [
    '# Pipeline benchmark: the agent\'s user-space work per span',
    '',
    `${out.date}, kernel ${out.kernel}, ${CPUS} CPUs, Node ${out.node}. ${records.length} ring records recorded from the demo service under wrk,`,
    `replayed until ${TARGET_SPANS} spans per stage, on CPU 0; the OTLP/gRPC receiver is a child process on the other CPUs.`,
    '',
    '| stage | spans | CPU ms | wall ms | µs CPU per span | spans/s per core |',
    '|---|---:|---:|---:|---:|---:|',
    ...out.stages.map((s) => `| ${s.stage} | ${s.spans} | ${s.cpuMs} | ${s.wallMs} | ${s.usPerSpan} | ${s.spansPerCoreSecond} |`),
    '',
    `**${out.spans_per_second_one_core} spans/s on one core** end to end (${out.agent_cpu_us_per_span} µs of CPU per span); the receiver got ${got} of ${TARGET_SPANS} spans, ${st.dropped} lost.`,
    '',
    'Reproduce: `make bench-pipeline` (as root: it records a run first). `BENCH_EVENTS=<recording>` replays a given recording; `BENCH_PROFILE=1` writes a CPU profile.',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'pipeline.md'), md);
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`bench-pipeline: ${(e as Error).message}\n`);
  process.exit(1);
});

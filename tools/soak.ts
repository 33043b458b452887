// make soak (not in CI): the agent tracing a service at a steady rate for
// SOAK_SECONDS (default 1800), sampling every second the agent's CPU, RSS,
// spans/s and drops; written to docs/soak/latest.json and drawn as
// docs/soak/latest.png (panels, top to bottom: agent CPU %, agent RSS MiB,
// spans/s exported, events lost in the ring + spans dropped, cumulative).
// SOAK_RATE requests/s (default 1000), SOAK_CONNECTIONS (default 8).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, AgentStats } from '../test/helpers/procs';
import { startLoad } from '../test/helpers/load';
import { repoRoot } from '../src/util/paths';
import { plotPng } from './png-plot';

const seconds = Number(process.env.SOAK_SECONDS ?? 1800);
const rate = Number(process.env.SOAK_RATE ?? 1000);
const conns = Number(process.env.SOAK_CONNECTIONS ?? 8);
const TICK = 100; // USER_HZ: clock ticks per second in /proc/<pid>/stat

function cpuTicks(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

async function main(): Promise<void> {
  const recv = await startOtlpReceiver({ grpc: true, http: false });
  const svc = await startService(serviceBinary('fault-server'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint]);
  const pid = agent.proc.pid!;
  const load = startLoad({ port: svc.port, connections: conns, rate });
  const samples: { t: number; cpuPct: number; rssMiB: number; spansPerSec: number; exported: number; ringDrops: number; queueDrops: number; sent: number }[] = [];
  let lastCpu = cpuTicks(pid), lastExported = 0, lastT = Date.now();
  const t0 = Date.now();
  for (let i = 1; i <= seconds; i++) {
    await new Promise((r) => setTimeout(r, t0 + i * 1000 - Date.now()));
    let s: AgentStats | undefined;
    try { s = agent.stats(); } catch { /* being rewritten */ }
    const now = Date.now(), cpu = cpuTicks(pid);
    const exported = s?.export.exported ?? lastExported;
    samples.push({
      t: i, cpuPct: (100 * (cpu - lastCpu) / TICK) / ((now - lastT) / 1000), rssMiB: rssKiB(pid) / 1024,
      spansPerSec: (exported - lastExported) / ((now - lastT) / 1000), exported,
      ringDrops: s ? s.probes.reduce((n, p) => n + p.drops, 0) : 0, queueDrops: s?.export.droppedQueueFull ?? 0, sent: load.now().sent,
    });
    lastCpu = cpu; lastExported = exported; lastT = now;
    if (i % 60 === 0) process.stdout.write(`soak: ${i}/${seconds} s, ${samples[samples.length - 1].rssMiB.toFixed(1)} MiB, ${exported} spans\n`);
  }
  load.stop();
  const r = await load.done;
  await agent.stop();
  await svc.stop();
  await recv.close();
  const dir = path.join(repoRoot(), 'docs', 'soak');
  fs.mkdirSync(dir, { recursive: true });
  const half = samples.slice(Math.floor(samples.length / 2));
  const first = samples.slice(5, Math.max(6, Math.floor(samples.length / 2)));
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const summary = {
    seconds, rate, connections: conns, requests: r.sent, errors: r.errors.length,
    cpuPctMean: avg(samples.map((x) => x.cpuPct)), rssMiBFirstHalf: avg(first.map((x) => x.rssMiB)), rssMiBSecondHalf: avg(half.map((x) => x.rssMiB)),
    rssMiBMax: Math.max(...samples.map((x) => x.rssMiB)), spansPerSecMean: avg(samples.map((x) => x.spansPerSec)),
    ringDrops: samples[samples.length - 1]?.ringDrops, queueDrops: samples[samples.length - 1]?.queueDrops,
  };
  fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ summary, samples }, null, 1) + '\n');
  fs.writeFileSync(path.join(dir, 'latest.png'), plotPng([
    { label: 'agent CPU %', values: samples.map((x) => x.cpuPct), color: [200, 60, 40] },
    { label: 'agent RSS MiB', values: samples.map((x) => x.rssMiB), color: [40, 90, 200] },
    { label: 'spans/s exported', values: samples.map((x) => x.spansPerSec), color: [30, 150, 60] },
    { label: 'drops (ring + queue)', values: samples.map((x) => x.ringDrops + x.queueDrops), color: [120, 60, 160] },
  ]));
  process.stdout.write(`soak: ${JSON.stringify(summary)}\n`);
}

void main();

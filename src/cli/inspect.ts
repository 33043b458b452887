// `otel-rust-agent inspect <exe|pid>`: what the agent sees in a binary and what
// it would attach, without attaching anything. With a PID traced by a running
// agent, it adds that agent's live probe counters.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeBinary, type SymbolOptions } from '../binary';
import { defaultSymbolOptions, prefetchSymbols } from '../binary/symbol-sources';
import { log } from '../util/log';
import { planProbes } from '../plan/plan';
import { PROBE_MODULES } from '../libs';
import { detectOtelSdk, userMemoryWrites } from '../libs/otel-sdk/detect';
import { requireExecutable, requireProcess } from '../agent/target';
import { UserError, EXIT } from '../util/errors';
import { detectPropagation, describePropagation, type PropagationReport } from '../propagation';

interface LiveProbe { id: number; hits: number; events: number; drops: number; badLayout: number; noEntry: number; disabled: string | null }

function liveCounters(pid: number): { agentPid: number; probes: LiveProbe[]; propagation?: PropagationReport | null } | undefined {
  const dir = '/run/otel-rust-agent';
  if (!fs.existsSync(dir)) return undefined;
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (Array.isArray(s.targets) && s.targets.includes(pid) && fs.existsSync(`/proc/${s.agentPid}`)) return s;
    } catch { /* being rewritten */ }
  }
  return undefined;
}

export async function inspect(target: string, json: boolean, out: (s: string) => void, symbols: SymbolOptions = defaultSymbolOptions()): Promise<number> {
  let binPath: string;
  let shownAs: string;
  let pid: number | undefined;
  if (/^\d+$/.test(target)) {
    pid = Number(target);
    shownAs = requireProcess(pid);
    binPath = `/proc/${pid}/exe`;
  } else {
    binPath = requireExecutable(target);
    shownAs = binPath;
  }
  const realPath = pid !== undefined ? shownAs : binPath;
  for (const w of await prefetchSymbols(binPath, realPath, symbols)) log.warn(`debuginfod: ${w}`);
  const t0 = process.hrtime.bigint();
  const bin = analyzeBinary(binPath, symbols, realPath);
  const plan = bin.isRust ? planProbes(bin, PROBE_MODULES) : undefined;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const live = pid !== undefined ? liveCounters(pid) : undefined;
  // Outgoing trace context: the running agent's path, or what this kernel allows.
  const propagation = live?.propagation ?? safeDetect();
  const hasClient = !!plan?.modules.some((m) => m.module.name === 'hyper-h1-client' && m.active);
  const otelSdk = bin.isRust ? detectOtelSdk(bin) : [];

  if (json) {
    out(JSON.stringify({
      path: shownAs,
      pid,
      isRust: bin.isRust,
      stripped: bin.stripped,
      symbols: { source: bin.symbolSource.kind, path: bin.symbolSource.path ?? null, detail: bin.symbolSource.detail, tried: bin.symbolSource.tried },
      rustc: bin.rustc?.full ?? null,
      buildId: bin.elf.buildId() ?? null,
      crates: Object.fromEntries(bin.crates),
      otelSdk: otelSdk.map((c) => ({ crate: c.crate, versions: c.versions, from: c.from })),
      userMemoryWrites: userMemoryWrites(),
      context: plan ? { taskIdTlsOffset: plan.context.taskIdTlsOffset ?? null, detail: plan.context.detail, facts: plan.context.facts, factNotes: plan.context.factNotes } : null,
      modules: plan?.modules.map((m) => ({
        name: m.module.name, active: m.active, reason: m.reason, crateVersions: m.crateVersions,
        probes: m.probes.map((p) => ({
          id: p.probeId, probe: p.spec.id, symbol: p.spec.symbol, site: p.spec.site, status: p.status, reason: p.reason,
          notes: p.notes, layout: p.layout ?? null,
          functions: p.functions.map((f) => ({ mangled: f.mangled, vaddr: f.vaddr, size: f.size, fileOffset: f.fileOffset })),
          sites: p.sites.map((s) => s.fileOffset),
          live: live?.probes.find((l) => l.id === p.probeId) ?? null,
        })),
      })) ?? [],
      propagation: propagation ? { ...propagation, live: !!live?.propagation, clientProbes: hasClient } : null,
      analysisMs: Math.round(ms),
    }, null, 2));
    return bin.isRust ? EXIT.OK : EXIT.TARGET;
  }

  out(`binary    ${shownAs}${pid !== undefined ? `  (pid ${pid})` : ''}`);
  out(`rust      ${bin.isRust ? 'yes' : 'no'}${bin.stripped ? ', stripped (no symbol table)' : ''}`);
  out(`rustc     ${bin.rustc?.full ?? 'unknown (.comment has no rustc marker)'}`);
  const bid = bin.elf.buildId();
  if (bid) out(`build-id  ${bid}`);
  const src = bin.symbolSource;
  out(`symbols   ${src.kind === 'own' ? 'own .symtab' : src.kind === 'none' ? `none: ${src.detail}` : `${src.path} (${src.detail})`}`);
  for (const t of src.tried) out(`          not used: ${t}`);
  const crates = [...bin.crates].sort(([a], [b]) => a.localeCompare(b));
  out(`crates    ${crates.length} found in panic locations`);
  const interesting = new Set(['hyper', 'h2', 'axum', 'tonic', 'reqwest', 'tokio', 'bytes', 'http', 'hyper-util', 'rustls', 'tokio-rustls']);
  for (const [name, vs] of crates) if (interesting.has(name)) out(`          ${name} ${vs.join(', ')}`);
  if (otelSdk.length) {
    out('otel sdk  the application uses the OpenTelemetry Rust SDK (manual spans; see the OTLP relay in README)');
    for (const c of otelSdk) out(`          ${c.crate} ${c.versions.length ? c.versions.join(', ') : 'version unknown'} (from ${c.from})`);
    const w = userMemoryWrites();
    out(`          manual root spans join agent traces through the OTLP relay (--otlp-relay-address); user-memory writes: ${w.allowed === null ? 'unknown' : w.allowed ? 'allowed, not used yet' : 'refused'} (${w.detail})`);
  } else if (bin.isRust) out('otel sdk  not linked');
  if (!bin.isRust) {
    out('not a Rust binary: nothing to instrument');
    return EXIT.TARGET;
  }
  if (!plan) return EXIT.TARGET;
  out(`task id   ${plan.context.taskIdTlsOffset !== undefined ? plan.context.detail : `unknown: ${plan.context.detail}`}`);
  for (const n of plan.context.factNotes) {
    if (n.module === 'otel-sdk') out(`otel span ${n.ok ? n.text : `not read at client calls: ${n.text}`}`);
    else if (n.module === 'thread-ctx') out(`threadctx ${n.ok ? n.text : `not read: ${n.text}`}`);
    else out(`${n.module}: ${n.ok ? n.text : `not located: ${n.text}`}`);
  }
  out('probes');
  for (const m of plan.modules) {
    out(`  ${m.module.name}: ${m.active ? 'active' : 'inactive'} (${m.reason})`);
    for (const p of m.probes) {
      const mark = { ready: 'found', standby: 'standby', missing: 'NOT FOUND', disabled: 'DISABLED' }[p.status];
      out(`    [${mark}] ${p.spec.id.padEnd(14)} ${p.spec.site.padEnd(12)} ${p.spec.symbol}`);
      out(`             ${p.reason}${p.layout ? `; ${p.spec.layout} layout from ${p.layout.from} (${p.layout.source})` : ''}`);
      if (p.sites.length) {
        const shown = p.sites.slice(0, 4).map((x) => `0x${x.vaddr.toString(16)}`).join(' ');
        out(`             at ${shown}${p.sites.length > 4 ? ` (+${p.sites.length - 4} more)` : ''}`);
      }
      for (const n of p.notes) out(`             note: ${n}`);
      const l = live?.probes.find((x) => x.id === p.probeId);
      if (l) out(`             live: ${l.hits} hits, ${l.events} events, ${l.drops} drops, ${l.badLayout} bad layout${l.disabled ? `, disabled: ${l.disabled}` : ''}`);
    }
  }
  if (propagation) {
    out(`propagation ${live?.propagation ? '(running agent) ' : ''}${describePropagation(propagation).replace(/^trace context propagation: /, '')}`);
    if (!hasClient) out('          no HTTP/1 client probes in this binary: nothing to propagate');
  }
  if (pid !== undefined && !live) out(`live counters: no running agent traces process ${pid}`);
  else if (live) out(`live counters from agent pid ${live.agentPid}`);
  out(`analysis took ${ms.toFixed(0)} ms`);
  return EXIT.OK;
}

/** The kernel's answer, or undefined without the rights to ask (inspect runs unprivileged too). */
function safeDetect(): PropagationReport | undefined {
  try { return detectPropagation(); } catch { return undefined; }
}

export function requireInspectTarget(t: string | undefined): string {
  if (!t) throw new UserError('inspect needs an executable path or a PID', EXIT.USAGE);
  return t;
}

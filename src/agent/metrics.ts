// Self-telemetry: Prometheus metrics, /healthz and /readyz over HTTP, off by
// default (--metrics-address / OTEL_RUST_AGENT_METRICS_ADDRESS). The
// exposition format comes from prom-client; every value is read from the
// agent when scraped (no timers, no cost between scrapes).
//
//   GET /metrics  Prometheus text exposition format 0.0.4
//   GET /healthz  200 while the agent runs (the event loop answers), 503 while it stops
//   GET /readyz   200 once the probes are attached and the first scan is done, else 503
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import type { AgentSnapshot } from './agent';
import type { MetricsAddress } from '../cli/config';
import { agentVersion } from '../util/paths';
import { UserError, EXIT } from '../util/errors';
import { log } from '../util/log';

const P = 'otel_rust_agent_';

/** A counter mirroring a cumulative value kept elsewhere: set on each scrape. */
function mirrorCounter<L extends string>(reg: Registry, name: string, help: string, labelNames: L[],
  values: () => [Partial<Record<L, string>>, number][]): void {
  new Counter({
    name, help, labelNames, registers: [reg],
    collect() {
      this.reset();
      for (const [labels, v] of values()) this.inc(labels, v);
    },
  });
}

function mirrorGauge<L extends string>(reg: Registry, name: string, help: string, labelNames: L[],
  values: () => [Partial<Record<L, string>>, number][]): void {
  new Gauge({
    name, help, labelNames, registers: [reg],
    collect() {
      this.reset();
      for (const [labels, v] of values()) this.set(labels, v);
    },
  });
}

export function agentRegistry(snapshot: () => AgentSnapshot): Registry {
  const reg = new Registry();
  // Agent CPU, memory, event-loop lag, heap: process_* and nodejs_*.
  collectDefaultMetrics({ register: reg });
  // One snapshot per scrape, shared by every metric's collect().
  let snap: AgentSnapshot | undefined;
  let at = 0;
  const s = () => {
    const now = Date.now();
    if (!snap || now - at > 50) { snap = snapshot(); at = now; }
    return snap;
  };
  const perProbe = (f: (c: AgentSnapshot['probes'][number]) => number) => () =>
    s().probes.map((p) => [{ library: p.probe.module.name, probe: p.probe.spec.id }, f(p)] as [Record<'library' | 'probe', string>, number]);
  const one = (f: (x: AgentSnapshot) => number) => () => [[{}, f(s())]] as [Record<never, string>, number][];

  mirrorGauge(reg, `${P}info`, 'The agent: version and attach mechanism (always 1).', ['version', 'attach_mode'],
    () => [[{ version: agentVersion(), attach_mode: s().attachMode ?? 'none' }, 1]]);
  mirrorGauge(reg, `${P}ready`, '1 once the probes are attached and the first scan is done.', [], one((x) => (x.ready ? 1 : 0)));

  mirrorCounter(reg, `${P}probe_hits_total`, 'Uprobe hits, per probe (every traced process and file).', ['library', 'probe'], perProbe((p) => Number(p.counters.hits)));
  mirrorCounter(reg, `${P}probe_events_total`, 'Events written to the ring buffer, per probe.', ['library', 'probe'], perProbe((p) => Number(p.counters.events)));
  mirrorCounter(reg, `${P}probe_ring_drops_total`, 'Events lost because the ring buffer was full, per probe.', ['library', 'probe'], perProbe((p) => Number(p.counters.drops)));
  mirrorCounter(reg, `${P}probe_bad_layout_total`, 'Reads that failed their layout check (counted, never used), per probe.', ['library', 'probe'], perProbe((p) => Number(p.counters.badLayout)));
  mirrorCounter(reg, `${P}probe_no_entry_total`, 'Return-site hits without a matching entry, per probe.', ['library', 'probe'], perProbe((p) => Number(p.counters.noEntry)));
  mirrorGauge(reg, `${P}probe_disabled`, '1 when the probe was disabled at run time (its layout checks kept failing).', ['library', 'probe'], perProbe((p) => (p.disabled ? 1 : 0)));

  mirrorCounter(reg, `${P}spans_created_total`, 'Spans built from events, per library.', ['library'],
    () => Object.entries(s().spans).map(([library, st]) => [{ library }, st.spans ?? 0]));
  mirrorCounter(reg, `${P}library_events_total`, 'Span-assembly counters of each library (requests, partial heads, abandoned, ...).', ['library', 'name'],
    () => Object.entries(s().spans).flatMap(([library, st]) => Object.entries(st).filter(([k]) => k !== 'pending' && k !== 'spans').map(([name, v]) => [{ library, name }, v] as [Record<'library' | 'name', string>, number])));
  mirrorGauge(reg, `${P}library_pending_requests`, 'Requests waiting for their response, per library.', ['library'],
    () => Object.entries(s().spans).filter(([, st]) => st.pending !== undefined).map(([library, st]) => [{ library }, st.pending]));
  mirrorCounter(reg, `${P}spans_submitted_total`, 'Spans handed to the exporter.', [], one((x) => x.export.submitted));
  mirrorCounter(reg, `${P}spans_exported_total`, 'Spans accepted by the collector (or printed, for the console exporter).', [], one((x) => x.export.exported));
  mirrorCounter(reg, `${P}spans_dropped_total`, 'Spans lost by the exporter: queue full, rejected, or left at shutdown.', [], one((x) => x.export.dropped));
  mirrorGauge(reg, `${P}spans_queued`, 'Spans held by the exporter now (queued, in flight, waiting for a retry).', [], one((x) => x.export.queued));
  mirrorCounter(reg, `${P}export_failures_total`, 'Export requests that failed (each retry counts).', [], one((x) => x.export.failedExports));
  mirrorCounter(reg, `${P}spans_filtered_total`, 'Spans dropped because their process is excluded by a selector (it shares a traced file).', [], one((x) => x.filteredSpans));
  mirrorCounter(reg, `${P}event_decode_errors_total`, 'Ring records no library could decode.', [], one((x) => x.decodeErrors));

  mirrorGauge(reg, `${P}traced_processes`, 'Processes traced now, per service.name.', ['service_name'], () => {
    const by = new Map<string, number>();
    for (const p of s().processes) if (p.selected) {
      const n = String(p.resource.attributes['service.name']);
      by.set(n, (by.get(n) ?? 0) + 1);
    }
    return [...by].map(([service_name, v]) => [{ service_name }, v]);
  });
  mirrorGauge(reg, `${P}excluded_processes`, 'Processes running a traced file but excluded by a selector.', [], one((x) => x.processes.filter((p) => !p.selected).length));
  mirrorGauge(reg, `${P}attached_files`, 'Executable files with probes attached (one attachment per file, whatever the number of its processes).', ['origin'], () => {
    const by = new Map<string, number>([['pid', 0], ['exe', 0], ['discovered', 0]]);
    for (const f of s().files) by.set(f.origin, (by.get(f.origin) ?? 0) + 1);
    return [...by].map(([origin, v]) => [{ origin }, v]);
  });

  mirrorCounter(reg, `${P}discovery_scans_total`, 'Scans of /proc.', [], one((x) => x.discovery?.scans ?? 0));
  mirrorGauge(reg, `${P}discovery_last_scan_seconds`, 'How long the last scan of /proc took (with the files it looked at).', [], one((x) => (x.discovery?.lastScanMs ?? 0) / 1000));
  mirrorCounter(reg, `${P}discovery_files_sniffed_total`, 'Executables whose headers were read.', [], one((x) => x.discovery?.sniffed ?? 0));
  mirrorCounter(reg, `${P}discovery_files_analysed_total`, 'Executables fully analysed and planned.', [], one((x) => x.discovery?.analysed ?? 0));
  mirrorCounter(reg, `${P}discovery_unreadable_total`, 'Processes whose executable the agent could not open (permissions).', [], one((x) => x.discovery?.unreadable ?? 0));
  mirrorGauge(reg, `${P}discovery_pending_processes`, 'Processes waiting for facts a selector needs (the pod list).', [], one((x) => x.discovery?.pending ?? 0));
  mirrorCounter(reg, `${P}k8s_api_requests_total`, 'Pod list requests to the Kubernetes API server.', [], one((x) => x.k8s?.requests ?? 0));
  mirrorCounter(reg, `${P}k8s_api_failures_total`, 'Pod list requests that failed.', [], one((x) => x.k8s?.failures ?? 0));
  return reg;
}

export class MetricsServer {
  private server: http.Server | undefined;
  private readonly registry: Registry;

  constructor(private readonly addr: MetricsAddress, private readonly snapshot: () => AgentSnapshot) {
    this.registry = agentRegistry(snapshot);
  }

  /** Listens; a bad or busy address is a UserError (one line, exit code 2). */
  async start(): Promise<AddressInfo> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new UserError(
        `metrics address ${this.addr.text}: cannot listen (${e.code === 'EADDRINUSE' ? 'address in use' : e.code === 'EADDRNOTAVAIL' ? 'not an address of this host' : e.code ?? e.message})`, EXIT.USAGE)));
      server.listen({ host: this.addr.host, port: this.addr.port }, () => resolve());
    });
    server.on('error', (e) => log.warn(`metrics server: ${e.message}`));
    server.unref();
    this.server = server;
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    const who = this.addr.host === undefined ? 'every interface' :
      /^(127\.|::1$|localhost$)/.test(this.addr.host) ? 'this host only (loopback)' : `the interface of ${this.addr.host}`;
    log.info(`metrics: http://${host}:${a.port}/metrics, /healthz, /readyz (reachable from ${who})`);
    return a;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') { send(405, 'text/plain', 'method not allowed\n'); return; }
    try {
      if (url === '/metrics') {
        send(200, this.registry.contentType, await this.registry.metrics());
      } else if (url === '/healthz') {
        const s = this.snapshot();
        if (s.stopping) send(503, 'text/plain', 'stopping\n'); else send(200, 'text/plain', 'ok\n');
      } else if (url === '/readyz') {
        const s = this.snapshot();
        if (s.ready) send(200, 'text/plain', 'ready\n'); else send(503, 'text/plain', s.stopping ? 'stopping\n' : 'starting\n');
      } else {
        send(404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
      }
    } catch (e) {
      send(500, 'text/plain', `${(e as Error).message}\n`);
    }
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return Promise.resolve();
    return new Promise((r) => { s.close(() => r()); s.closeAllConnections(); });
  }
}

// A local Jaeger for the demo and its test: the binary built from the Go
// module proxy (scripts/deploy-tools.sh jaeger), in-memory storage, every
// port on 127.0.0.1 (chosen free, the UI on 16686 when it is free), its
// configuration written to a temporary directory.
//
// The Go module carries no UI assets (they are built from the jaeger-ui
// repository for releases): without JAEGER_UI_ASSETS (a jaeger-ui build
// directory holding index.html) the UI address serves Jaeger's placeholder
// page, while the HTTP API the test uses works either way.
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../src/util/paths';

export interface Jaeger {
  proc: ChildProcess;
  uiUrl: string;
  /** OTLP/gRPC endpoint (for the agent). */
  otlpGrpc: string;
  /** OTLP/HTTP base URL. */
  otlpHttp: string;
  /** Whether real UI assets are served (else the placeholder page). */
  ui: boolean;
  log(): string;
  stop(): Promise<void>;
}

export function jaegerBinary(): string {
  return execFileSync(path.join(repoRoot(), 'scripts/deploy-tools.sh'), ['jaeger'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

function freePort(preferred = 0): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(freePort(0)));
    s.listen(preferred, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function config(p: { ui: number; query: number; health: number; grpc: number; http: number }, assets?: string): string {
  return `# Written by tools/jaeger.ts: in-memory storage, loopback only.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${p.health}
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${p.ui}
    grpc:
      endpoint: 127.0.0.1:${p.query}
${assets ? `    ui:\n      assets_path: ${JSON.stringify(assets)}\n` : ''}  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${p.grpc}
      http:
        endpoint: 127.0.0.1:${p.http}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
}

export async function startJaeger(opts: { binary?: string; assets?: string; preferUiPort?: number } = {}): Promise<Jaeger> {
  const bin = opts.binary ?? jaegerBinary();
  const assets = opts.assets ?? process.env.JAEGER_UI_ASSETS;
  if (assets && !fs.existsSync(path.join(assets, 'index.html'))) throw new Error(`JAEGER_UI_ASSETS=${assets}: no index.html there (give a jaeger-ui build directory)`);
  const ports = {
    ui: await freePort(opts.preferUiPort ?? 16686), query: await freePort(), health: await freePort(), grpc: await freePort(), http: await freePort(),
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jaeger-'));
  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, config(ports, assets && path.resolve(assets)));
  const proc = spawn(bin, ['--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logText = '';
  proc.stdout!.on('data', (d: Buffer) => (logText += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (logText += d.toString()));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const kill = () => { if (proc.exitCode === null) proc.kill('SIGKILL'); };
  process.on('exit', kill);
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Healthy once every component started.
  const end = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`jaeger exited with ${proc.exitCode}:\n${logText}`);
    try {
      const r = await fetch(`http://127.0.0.1:${ports.health}/status`);
      if (r.ok && ((await r.json()) as { healthy?: boolean }).healthy) break;
    } catch { /* not listening yet */ }
    if (Date.now() > end) { await stop(); throw new Error(`jaeger did not become healthy in 60 s:\n${logText}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    proc, ui: !!assets,
    uiUrl: `http://127.0.0.1:${ports.ui}`,
    otlpGrpc: `http://127.0.0.1:${ports.grpc}`,
    otlpHttp: `http://127.0.0.1:${ports.http}`,
    log: () => logText,
    stop,
  };
}

/** Jaeger's HTTP API (the one its UI uses), as it answers. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  startTime: number;
  duration: number;
  tags: { key: string; type: string; value: string | number | boolean }[];
  processID: string;
}
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; value: string | number | boolean }[] }>;
}

export async function jaegerApi<T>(j: Jaeger, p: string): Promise<T> {
  const r = await fetch(`${j.uiUrl}${p}`);
  if (!r.ok) throw new Error(`GET ${p}: HTTP ${r.status}`);
  return ((await r.json()) as { data: T }).data;
}

export function tag(s: JaegerSpan | JaegerTrace['processes'][string], key: string): string | number | boolean | undefined {
  return s.tags.find((t) => t.key === key)?.value;
}

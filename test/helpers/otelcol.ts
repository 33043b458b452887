// A real OpenTelemetry Collector (v0.165.0, core modules only, built from the
// Go module proxy by scripts/deploy-tools.sh otelcol from scripts/otelcol).
//
// It listens for OTLP on two receivers, one per transport (otlp/grpc: gRPC
// only, otlp/http: HTTP only), each in a pipeline of its own whose otlp_http
// exporter forwards what the collector decoded to an in-test receiver
// (test/helpers/otlp-receiver.ts). So a test sees the exact spans the
// collector made of the agent's requests, and by which of our receivers they
// arrive, which of the collector's transports took them. The exporters have
// no queue and no retries: the collector answers the agent only once the
// forward succeeded, so the agent's `exported` counter and what arrived agree.
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from './rustbuild';
import { Output } from './procs';

/** Builds the collector once (minutes, the first time) and returns its path. */
export function otelcolBinary(): string {
  return execFileSync(path.join(repoRoot(), 'scripts/deploy-tools.sh'), ['otelcol'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 40 * 60_000,
  }).trim();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface Collector {
  proc: ChildProcess;
  /** OTLP/gRPC endpoint of the collector ("http://127.0.0.1:PORT"). */
  grpcEndpoint: string;
  /** OTLP/HTTP base URL of the collector (the agent appends /v1/traces). */
  httpEndpoint: string;
  grpcPort: number;
  httpPort: number;
  /** The collector's own log (stderr). */
  log: Output;
  stop(): Promise<void>;
}

export interface CollectorOptions {
  /** Base URL of the receiver that gets what the collector's gRPC receiver took. */
  forwardGrpcTo: string;
  /** Base URL of the receiver that gets what the collector's HTTP receiver took. */
  forwardHttpTo: string;
}

function config(grpcPort: number, httpPort: number, o: CollectorOptions): string {
  const exporter = (to: string) => `
    traces_endpoint: ${to}/v1/traces
    compression: none
    timeout: 10s
    retry_on_failure:
      enabled: false
    sending_queue:
      enabled: false`;
  return `# Written by test/helpers/otelcol.ts: loopback only.
receivers:
  otlp/grpc:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${grpcPort}
  otlp/http:
    protocols:
      http:
        endpoint: 127.0.0.1:${httpPort}
exporters:
  otlp_http/grpc:${exporter(o.forwardGrpcTo)}
  otlp_http/http:${exporter(o.forwardHttpTo)}
service:
  pipelines:
    traces/grpc:
      receivers: [otlp/grpc]
      exporters: [otlp_http/grpc]
    traces/http:
      receivers: [otlp/http]
      exporters: [otlp_http/http]
`;
}

export async function startCollector(bin: string, o: CollectorOptions): Promise<Collector> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelcol-'));
  const cfgFile = path.join(dir, 'config.yaml');
  // Free ports are picked here and bound by the collector a moment later: a
  // port taken in between makes it exit, and one more try takes other ports.
  for (let attempt = 1; ; attempt++) {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    fs.writeFileSync(cfgFile, config(grpcPort, httpPort, o));
    const proc = spawn(bin, ['--config', cfgFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    const log = new Output(proc.stderr);
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    const kill = () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); };
    process.on('exit', kill);
    try {
      await Promise.race([
        log.wait(/Everything is ready/, 60_000),
        exited.then((c) => { throw new Error(`otelcol exited with ${c} before it was ready:\n${log.text}`); }),
      ]);
    } catch (e) {
      kill();
      await exited;
      if (attempt < 3 && /address already in use/.test(log.text)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return {
      proc, grpcPort, httpPort, log,
      grpcEndpoint: `http://127.0.0.1:${grpcPort}`,
      httpEndpoint: `http://127.0.0.1:${httpPort}`,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        const t = setTimeout(kill, 10_000);
        await exited;
        clearTimeout(t);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * A TCP pass-through that keeps every byte the client sent: put between the
 * agent and the collector, it shows what really went over the wire (gzip or
 * not), which the collector's transparent decompression hides.
 */
export interface WireTap {
  endpoint: string;
  /** Client-to-server bytes, one buffer per connection. */
  sent(): Buffer[];
  close(): Promise<void>;
}

export async function startWireTap(targetPort: number): Promise<WireTap> {
  const conns: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const chunks: Buffer[] = [];
    conns.push(chunks);
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => { chunks.push(d); upstream.write(d); });
    upstream.on('data', (d: Buffer) => client.write(d));
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    sent: () => conns.map((c) => Buffer.concat(c)),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** HTTP/1.1 requests in a client-to-server byte stream: head and raw body (content-length framing). */
export function http1Requests(stream: Buffer): { head: string; body: Buffer }[] {
  const out: { head: string; body: Buffer }[] = [];
  let p = 0;
  while (p < stream.length) {
    const end = stream.indexOf('\r\n\r\n', p);
    if (end < 0) break;
    const head = stream.subarray(p, end).toString('latin1');
    const len = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
    out.push({ head, body: stream.subarray(end + 4, end + 4 + len) });
    p = end + 4 + len;
  }
  return out;
}

/**
 * The gRPC messages in a client-to-server HTTP/2 byte stream (after the
 * connection preface): each DATA frame's payload, joined per stream, split
 * into length-prefixed messages with their compressed flag.
 */
export function grpcMessages(stream: Buffer): { compressed: boolean; message: Buffer }[] {
  const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  if (stream.subarray(0, PREFACE.length).toString('latin1') !== PREFACE) throw new Error('not an HTTP/2 connection');
  const data = new Map<number, Buffer[]>();
  let p = PREFACE.length;
  while (p + 9 <= stream.length) {
    const len = stream.readUIntBE(p, 3);
    const type = stream[p + 3];
    const flags = stream[p + 4];
    const id = stream.readUInt32BE(p + 5) & 0x7fffffff;
    let payload = stream.subarray(p + 9, p + 9 + len);
    p += 9 + len;
    if (type !== 0) continue; // DATA only
    if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]); // PADDED
    data.set(id, [...(data.get(id) ?? []), payload]);
  }
  const out: { compressed: boolean; message: Buffer }[] = [];
  for (const parts of data.values()) {
    const b = Buffer.concat(parts);
    for (let q = 0; q + 5 <= b.length;) {
      const n = b.readUInt32BE(q + 1);
      out.push({ compressed: b[q] === 1, message: b.subarray(q + 5, q + 5 + n) });
      q += 5 + n;
    }
  }
  return out;
}

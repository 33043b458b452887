// Sending encoded OTLP requests: gRPC through @grpc/grpc-js (one unary call
// per request, with a pass-through serializer: the body is already protobuf)
// and HTTP/protobuf through node:http / node:https with keep-alive. Both
// report the outcome the OTLP exporter specification distinguishes: success
// (possibly partial: the collector rejected some spans), a retryable failure
// (with the delay the collector asked for, if any), a request too large, or a
// rejection that must not be retried.
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import type * as grpcTypes from '@grpc/grpc-js';
import { fields } from './encode';

export type Compression = 'gzip' | 'none';

export interface TlsFiles {
  /** PEM CA bundle to trust (OTEL_EXPORTER_OTLP_CERTIFICATE). */
  ca?: Buffer;
  /** PEM client key and certificate for mTLS. */
  clientKey?: Buffer;
  clientCert?: Buffer;
  /** gRPC only: no TLS for an endpoint without http:// or https:// (OTEL_EXPORTER_OTLP_INSECURE). */
  insecure?: boolean;
}

export interface TransportOptions {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: Compression;
  tls: TlsFiles;
  userAgent: string;
  /** Requests that may be in flight at once (sizes the HTTP agent). */
  concurrency: number;
}

export type SendResult =
  | { kind: 'ok'; rejected: number; message?: string }
  | { kind: 'retry'; error: string; retryAfterMs?: number }
  | { kind: 'too-large'; error: string }
  | { kind: 'reject'; error: string };

export interface Transport {
  send(body: Buffer): Promise<SendResult>;
  close(): void;
}

/** ExportTraceServiceResponse.partial_success {rejected_spans = 1 (int64), error_message = 2}. */
export function parsePartialSuccess(body: Buffer | undefined): { rejected: number; message?: string } {
  if (!body || body.length === 0) return { rejected: 0 };
  try {
    for (const [f, ps] of fields(body)) {
      if (f !== 1) continue;
      let rejected = 0;
      let message: string | undefined;
      let p = 0;
      while (p < ps.length) {
        const tag = ps[p++];
        if (tag === 0x08) {
          let v = 0, mul = 1, c: number;
          do { c = ps[p++]; v += (c & 0x7f) * mul; mul *= 128; } while (c & 0x80 && p < ps.length);
          rejected = v;
        } else if (tag === 0x12) {
          let n = 0, mul = 1, c: number;
          do { c = ps[p++]; n += (c & 0x7f) * mul; mul *= 128; } while (c & 0x80 && p < ps.length);
          message = ps.toString('utf8', p, p + n);
          p += n;
        } else break;
      }
      return { rejected, message: message || undefined };
    }
  } catch { /* not our concern: the request itself was accepted */ }
  return { rejected: 0 };
}

// ---------------------------------------------------------------- gRPC

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
// gRPC status codes the OTLP spec calls retryable.
const GRPC_RETRYABLE = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 10 /* ABORTED */,
  11 /* OUT_OF_RANGE */, 14 /* UNAVAILABLE */, 15 /* DATA_LOSS */]);
const GRPC_RESOURCE_EXHAUSTED = 8;

/** "http://host:4317" / "https://host" / "host:4317" -> grpc target and whether to use TLS. */
export function grpcTarget(url: string, insecure: boolean | undefined): { target: string; tls: boolean } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)/i.exec(url);
  if (m) {
    const scheme = m[1].toLowerCase();
    const hostPort = m[2];
    const tls = scheme === 'https';
    const target = /:\d+$/.test(hostPort) || hostPort.startsWith('[') && /\]:\d+$/.test(hostPort) ? hostPort : `${hostPort}:${tls ? 443 : 80}`;
    return { target, tls };
  }
  return { target: url.replace(/\/.*$/, ''), tls: insecure !== true };
}

export class GrpcTransport implements Transport {
  private readonly grpc: typeof grpcTypes;
  private readonly client: grpcTypes.Client;
  private readonly metadata: grpcTypes.Metadata;

  constructor(private readonly opts: TransportOptions) {
    this.grpc = require('@grpc/grpc-js') as typeof grpcTypes;
    const g = this.grpc;
    const { target, tls } = grpcTarget(opts.url, opts.tls.insecure);
    const creds = tls
      ? g.credentials.createSsl(opts.tls.ca ?? null, opts.tls.clientKey ?? null, opts.tls.clientCert ?? null)
      : g.credentials.createInsecure();
    this.client = new g.Client(target, creds, {
      'grpc.primary_user_agent': opts.userAgent,
      // A collector that comes back is used within seconds (grpc-js backs off up to 120 s by default).
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5000,
      'grpc.max_send_message_length': 64 << 20,
      'grpc.max_receive_message_length': 4 << 20,
      ...(opts.compression === 'gzip' ? { 'grpc.default_compression_algorithm': 2 } : {}),
    });
    this.metadata = new g.Metadata();
    for (const [k, v] of Object.entries(opts.headers)) {
      const key = k.toLowerCase();
      if (key.endsWith('-bin')) this.metadata.set(key, Buffer.from(v));
      else this.metadata.set(key, v);
    }
  }

  send(body: Buffer): Promise<SendResult> {
    return new Promise((resolve) => {
      const deadline = new Date(Date.now() + this.opts.timeoutMs);
      this.client.makeUnaryRequest<Buffer, Buffer>(EXPORT_PATH, (b) => b, (b) => b, body, this.metadata.clone(), { deadline },
        (err, resp) => {
          if (!err) { resolve({ kind: 'ok', ...parsePartialSuccess(resp) }); return; }
          const code = err.code;
          const error = `${this.grpc.status[code] ?? code}: ${err.details || err.message}`;
          if (code === GRPC_RESOURCE_EXHAUSTED) {
            resolve(/larger than max|message length|too large/i.test(err.details ?? '') ? { kind: 'too-large', error } : { kind: 'retry', error });
          } else if (GRPC_RETRYABLE.has(code)) {
            resolve({ kind: 'retry', error });
          } else {
            resolve({ kind: 'reject', error });
          }
        });
    });
  }

  close(): void {
    this.client.close();
  }
}

// ---------------------------------------------------------------- HTTP/protobuf

export class HttpTransport implements Transport {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly baseHeaders: Record<string, string>;

  constructor(private readonly opts: TransportOptions) {
    this.url = new URL(opts.url);
    const secure = this.url.protocol === 'https:';
    this.mod = secure ? https : http;
    this.agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: opts.concurrency, ca: opts.tls.ca, key: opts.tls.clientKey, cert: opts.tls.clientCert })
      : new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
    this.baseHeaders = {
      ...opts.headers,
      'content-type': 'application/x-protobuf',
      'user-agent': opts.userAgent,
      ...(opts.compression === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
    };
  }

  async send(body: Buffer): Promise<SendResult> {
    let payload = body;
    if (this.opts.compression === 'gzip') {
      payload = await new Promise<Buffer>((res, rej) => zlib.gzip(body, { level: 1 }, (e, out) => (e ? rej(e) : res(out))));
    }
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: SendResult) => { if (!done) { done = true; resolve(r); } };
      const req = this.mod.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { ...this.baseHeaders, 'content-length': String(payload.length) },
        timeout: this.opts.timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish({ kind: 'retry', error: e.message }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks);
          if (status >= 200 && status < 300) { finish({ kind: 'ok', ...parsePartialSuccess(text) }); return; }
          const error = `HTTP ${status}${text.length ? `: ${describeBody(text)}` : ''}`;
          if (status === 413) finish({ kind: 'too-large', error });
          else if (status === 429 || status === 502 || status === 503 || status === 504) {
            finish({ kind: 'retry', error, retryAfterMs: retryAfter(res.headers['retry-after']) });
          } else finish({ kind: 'reject', error });
        });
      });
      req.on('timeout', () => { req.destroy(new Error(`no response within ${this.opts.timeoutMs} ms`)); });
      req.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'retry', error: e.code ? `${e.code} ${e.message}`.replace(`${e.code} ${e.code}`, e.code) : e.message }));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Retry-After: seconds or an HTTP date. */
function retryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/** A collector's error body: a google.rpc.Status (message = field 2) or text. */
function describeBody(b: Buffer): string {
  try {
    for (const [f, v] of fields(b)) if (f === 2) return v.toString('utf8').slice(0, 200);
  } catch { /* not protobuf */ }
  const t = b.toString('utf8').replace(/\s+/g, ' ').trim();
  return /^[\x20-\x7e]*$/.test(t) ? t.slice(0, 200) : `${b.length} bytes`;
}

export function createTransport(protocol: 'grpc' | 'http/protobuf', opts: TransportOptions): Transport {
  return protocol === 'grpc' ? new GrpcTransport(opts) : new HttpTransport(opts);
}

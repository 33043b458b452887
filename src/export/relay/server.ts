// The relay's listeners: OTLP/HTTP (protobuf) `POST /v1/traces` and
// OTLP/gRPC `opentelemetry.proto.collector.trace.v1.TraceService/Export`,
// answering as the OTLP specification says a collector answers:
//   accepted                200 / OK, an empty ExportTraceServiceResponse
//   not a valid request     400 / INVALID_ARGUMENT (the client must not retry)
//   export queue full       503 + Retry-After / UNAVAILABLE (the client retries: nothing is lost)
//   JSON                    415 (only the protobuf encoding is accepted)
//   body too large          413 / RESOURCE_EXHAUSTED
// Errors carry a google.rpc.Status body (HTTP) or status details (gRPC).
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import type * as grpcTypes from '@grpc/grpc-js';
import type { OtlpRelay, RelayResult } from './relay';
import { lenField } from './otlp-traces';
import { UserError, EXIT } from '../../util/errors';
import { log } from '../../util/log';

export interface ListenAddress { host: string | undefined; port: number; text: string }

/** Requests larger than this are refused (the collector's default for OTLP/HTTP is 20 MiB). */
export const MAX_BODY_BYTES = 20 << 20;
const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** google.rpc.Status { int32 code = 1; string message = 2; } */
function rpcStatus(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([0x08, code]), lenField(2, Buffer.from(message, 'utf8'))]);
}

export class RelayHttpServer {
  private server: http.Server | undefined;
  constructor(private readonly relay: OtlpRelay, private readonly addr: ListenAddress) {}

  /** Listens; a busy or bad address is a one-line UserError. Resolves with the port. */
  start(): Promise<number> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new UserError(`--otlp-relay-address ${this.addr.text}: cannot listen (${e.code ?? e.message})`, EXIT.USAGE)));
      server.listen(this.addr.port, this.addr.host, () => {
        server.removeAllListeners('error');
        server.on('error', (e) => log.warn(`OTLP relay: ${e.message}`));
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((r) => { if (!this.server) return r(); this.server.close(() => r()); this.server.closeAllConnections(); });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const fail = (status: number, message: string, extra: Record<string, string> = {}) => {
      const grpcCode = { 400: 3, 404: 12, 405: 12, 413: 8, 415: 3, 503: 14 }[status] ?? 2;
      res.writeHead(status, { 'content-type': 'application/x-protobuf', ...extra });
      res.end(rpcStatus(grpcCode, message));
    };
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/traces') { req.resume(); return fail(404, `no OTLP signal at ${path.slice(0, 100)} (the relay takes traces: /v1/traces)`); }
    if (req.method !== 'POST') { req.resume(); return fail(405, 'POST only'); }
    const ct = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (ct !== 'application/x-protobuf') { req.resume(); return fail(415, `content-type ${ct || '(none)'}: the relay takes application/x-protobuf`); }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) { tooLarge = true; return; }
      chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (tooLarge) return fail(413, `request larger than ${MAX_BODY_BYTES} bytes`);
      let body = Buffer.concat(chunks);
      const enc = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
      if (enc === 'gzip') {
        try { body = zlib.gunzipSync(body, { maxOutputLength: MAX_BODY_BYTES }); } catch { return fail(400, 'content-encoding gzip: not valid gzip data'); }
      } else if (enc && enc !== 'identity') return fail(415, `content-encoding ${enc} is not supported (gzip or none)`);
      const r = this.relay.receive(body);
      if (r.kind === 'ok') {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      } else if (r.kind === 'malformed') fail(400, `malformed ExportTraceServiceRequest: ${r.message}`);
      else fail(503, r.message, { 'retry-after': '1' });
    });
  }
}

export class RelayGrpcServer {
  private server: grpcTypes.Server | undefined;
  constructor(private readonly relay: OtlpRelay, private readonly addr: ListenAddress) {}

  start(): Promise<number> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const grpc = require('@grpc/grpc-js') as typeof grpcTypes;
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_BODY_BYTES });
    this.server = server;
    const same = (b: Buffer) => b;
    server.addService({
      Export: {
        path: EXPORT_PATH, requestStream: false, responseStream: false,
        requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same,
      },
    } as grpcTypes.ServiceDefinition, {
      Export: (call: grpcTypes.ServerUnaryCall<Buffer, Buffer>, cb: grpcTypes.sendUnaryData<Buffer>) => {
        const r: RelayResult = this.relay.receive(call.request);
        if (r.kind === 'ok') cb(null, Buffer.alloc(0));
        else if (r.kind === 'malformed') cb({ code: grpc.status.INVALID_ARGUMENT, details: `malformed ExportTraceServiceRequest: ${r.message}` });
        else cb({ code: grpc.status.UNAVAILABLE, details: r.message });
      },
    });
    const host = this.addr.host === undefined ? '0.0.0.0' : this.addr.host.includes(':') ? `[${this.addr.host}]` : this.addr.host;
    return new Promise((resolve, reject) => {
      server.bindAsync(`${host}:${this.addr.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(new UserError(`--otlp-relay-grpc-address ${this.addr.text}: cannot listen (${err.message.split('\n')[0]})`, EXIT.USAGE));
        else resolve(port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((r) => { if (!this.server) return r(); this.server.tryShutdown(() => r()); setTimeout(() => { this.server?.forceShutdown(); r(); }, 2000).unref(); });
  }
}

// A real, in-process OTLP trace receiver for tests: gRPC (@grpc/grpc-js, raw
// bytes handler, no codegen) and HTTP/protobuf (node:http, POST /v1/traces).
// Requests are decoded with protobufjs from the minimal .proto subset in
// ./proto (field numbers as in the official opentelemetry-proto).
//
// It can be told to fail (gRPC UNAVAILABLE / HTTP 503) to exercise retries,
// and it can be restarted on the same ports (pass grpcPort / httpPort).

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

export type ReceivedValue = string | number | boolean;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP SpanKind number: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, ReceivedValue>;
  /** code: 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message: string };
  resource: Record<string, ReceivedValue>;
  scope: { name: string; version: string };
  flags: number;
  /** Which transport delivered it. */
  via: 'grpc' | 'http';
  /** Index of the request that carried it (0-based, counts every request). */
  request: number;
  /** Index of the ResourceSpans it came in, within its request. */
  resourceIndex: number;
}

export interface OtlpReceiverOptions {
  grpc?: boolean;
  http?: boolean;
  /** Fixed ports (to restart a receiver where a previous one listened). 0 = ephemeral. */
  grpcPort?: number;
  httpPort?: number;
  /** Start in failing mode for this many ms (gRPC UNAVAILABLE, HTTP 503). */
  failForMs?: number;
  /** gRPC server max receive message length (grpc-js default: 4 MiB). */
  grpcMaxReceiveBytes?: number;
  /** Serve over TLS (https:// endpoints); with `ca` and requireClientCert, mutual TLS. */
  tls?: { key: Buffer; cert: Buffer; ca?: Buffer; requireClientCert?: boolean };
  /** Answer every request with a partial success rejecting this many spans. */
  partialReject?: number;
  /** Keep every request body as it came (rawBodies()), to search the bytes on the wire. */
  keepRaw?: boolean;
  /** Answer each request this long after it arrived (a slow collector). */
  answerDelayMs?: number;
}

export interface OtlpReceiver {
  /** "http://127.0.0.1:PORT" (use as is for gRPC). '' when gRPC is off. */
  grpcEndpoint: string;
  /** "http://127.0.0.1:PORT" base URL (the exporter appends /v1/traces). '' when HTTP is off. */
  httpEndpoint: string;
  grpcPort: number;
  httpPort: number;
  spans(): ReceivedSpan[];
  waitForSpans(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** Every Export request seen, failed ones included. */
  readonly requestsCount: number;
  /** Requests answered with a failure (failing mode or undecodable body). */
  readonly failedRequests: number;
  /** Every request body, undecoded (with keepRaw). */
  rawBodies(): Buffer[];
  /** Headers / metadata of the last request (lowercase keys). */
  lastHeaders(): Record<string, string>;
  /** Failing mode on/off; with ms, switches itself off after ms. */
  setFailing(failing: boolean, ms?: number): void;
  clear(): void;
  close(): Promise<void>;
}

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

let cachedType: protobuf.Type | undefined;

function protoDir(): string {
  // Compiled to dist/test/helpers/; the .proto files stay in test/helpers/proto.
  const candidates = [
    path.join(__dirname, 'proto'),
    path.resolve(__dirname, '..', '..', '..', 'test', 'helpers', 'proto'),
  ];
  for (const c of candidates) if (fs.existsSync(path.join(c, 'trace_service.proto'))) return c;
  throw new Error(`otlp-receiver: proto files not found in ${candidates.join(' or ')}`);
}

function requestType(): protobuf.Type {
  if (cachedType) return cachedType;
  const dir = protoDir();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string) => path.join(dir, path.basename(target));
  root.loadSync('trace_service.proto', { keepCase: true });
  cachedType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  return cachedType;
}

/** Encodes an ExportTraceServiceRequest from a plain object (field names as in the .proto: resource_spans, trace_id...). */
export function encodeExportRequest(obj: object): Buffer {
  const T = requestType();
  return Buffer.from(T.encode(T.fromObject(obj)).finish());
}

/** Decodes an ExportTraceServiceRequest body into flat spans. */
export function decodeExportRequest(body: Uint8Array, via: 'grpc' | 'http', request: number): ReceivedSpan[] {
  const T = requestType();
  const msg = T.toObject(T.decode(body), { longs: String, enums: Number, bytes: Buffer, defaults: true, oneofs: true }) as any;
  const out: ReceivedSpan[] = [];
  (msg.resource_spans ?? []).forEach((rs: any, resourceIndex: number) => {
    const resource = kvList(rs.resource?.attributes);
    for (const ss of rs.scope_spans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          traceState: s.trace_state ?? '',
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: BigInt(s.start_time_unix_nano),
          endTimeUnixNano: BigInt(s.end_time_unix_nano),
          attributes: kvList(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope,
          flags: s.flags >>> 0,
          via,
          request,
          resourceIndex,
        });
      }
    }
  });
  return out;
}

function hex(b: Buffer | Uint8Array | undefined): string {
  return b && b.length ? Buffer.from(b).toString('hex') : '';
}

function kvList(kvs: any[] | undefined): Record<string, ReceivedValue> {
  const o: Record<string, ReceivedValue> = {};
  for (const kv of kvs ?? []) o[kv.key] = anyValue(kv.value);
  return o;
}

function anyValue(v: any): ReceivedValue {
  if (!v) return '';
  switch (v.value) {
    case 'string_value': return v.string_value;
    case 'bool_value': return v.bool_value;
    case 'int_value': return Number(v.int_value);
    case 'double_value': return v.double_value;
    case 'bytes_value': return Buffer.from(v.bytes_value).toString('hex');
    case 'array_value': return JSON.stringify((v.array_value?.values ?? []).map(anyValue));
    case 'kvlist_value': return JSON.stringify(kvList(v.kvlist_value?.values));
    default: return '';
  }
}

export async function startOtlpReceiver(opts: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const wantGrpc = opts.grpc ?? true;
  const wantHttp = opts.http ?? true;
  requestType(); // fail early if the .proto files are missing

  const received: ReceivedSpan[] = [];
  const raw: Buffer[] = [];
  let requests = 0;
  let failed = 0;
  let failing = false;
  let failTimer: NodeJS.Timeout | undefined;
  let headers: Record<string, string> = {};
  const waiters = new Set<() => void>();
  // ExportTraceServiceResponse { partial_success (1) { rejected_spans (1), error_message (2) } }
  const response = (() => {
    if (!opts.partialReject) return Buffer.alloc(0);
    const msg = Buffer.from('spans rejected on purpose');
    const inner = Buffer.concat([Buffer.from([0x08, opts.partialReject]), Buffer.from([0x12, msg.length]), msg]);
    return Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
  })();

  const setFailing = (on: boolean, ms?: number) => {
    if (failTimer) clearTimeout(failTimer);
    failTimer = undefined;
    failing = on;
    if (on && ms !== undefined) {
      failTimer = setTimeout(() => { failing = false; failTimer = undefined; }, ms);
      failTimer.unref();
    }
  };
  if (opts.failForMs) setFailing(true, opts.failForMs);

  /** Returns an error string when the request must be refused. */
  const accept = (body: Buffer, via: 'grpc' | 'http', hdrs: Record<string, string>): string | null => {
    const index = requests++;
    headers = hdrs;
    if (opts.keepRaw) raw.push(Buffer.from(body));
    if (failing) { failed++; return 'receiver is failing on purpose'; }
    let spans: ReceivedSpan[];
    try {
      spans = decodeExportRequest(body, via, index);
    } catch (e) {
      failed++;
      return `undecodable request: ${(e as Error).message}`;
    }
    received.push(...spans);
    for (const w of [...waiters]) w();
    return null;
  };

  // ---- gRPC ----
  let grpcServer: grpc.Server | undefined;
  let grpcPort = 0;
  if (wantGrpc) {
    const identity = (b: Buffer) => b;
    const service: grpc.ServiceDefinition = {
      Export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    };
    const srvOpts: grpc.ServerOptions = {};
    if (opts.grpcMaxReceiveBytes) srvOpts['grpc.max_receive_message_length'] = opts.grpcMaxReceiveBytes;
    grpcServer = new grpc.Server(srvOpts);
    grpcServer.addService(service, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const md: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) md[k.toLowerCase()] = String(v);
        const err = accept(call.request, 'grpc', md);
        const answer = () => {
          if (err) cb({ code: failing ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT, details: err });
          else cb(null, response);
        };
        if (opts.answerDelayMs) setTimeout(answer, opts.answerDelayMs); else answer();
      },
    });
    const srv = grpcServer;
    grpcPort = await new Promise<number>((resolve, reject) =>
      srv.bindAsync(`127.0.0.1:${opts.grpcPort ?? 0}`, opts.tls
        ? grpc.ServerCredentials.createSsl(opts.tls.ca ?? null, [{ private_key: opts.tls.key, cert_chain: opts.tls.cert }], opts.tls.requireClientCert === true)
        : grpc.ServerCredentials.createInsecure(),
        (e, port) => (e ? reject(e) : resolve(port))));
  }

  // ---- HTTP/protobuf ----
  let httpServer: http.Server | undefined;
  let httpPort = 0;
  if (wantHttp) {
    const handler: http.RequestListener = (req, res) => {
      if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') {
          try { body = zlib.gunzipSync(body); } catch { /* decode will fail below */ }
        }
        const hdrs: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) hdrs[k] = String(v);
        const err = accept(body, 'http', hdrs);
        const answer = () => {
          if (err) {
            res.writeHead(failing ? 503 : 400, { 'content-type': 'text/plain' }).end(err);
          } else {
            res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(response);
          }
        };
        if (opts.answerDelayMs) setTimeout(answer, opts.answerDelayMs); else answer();
      });
    };
    httpServer = opts.tls
      ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: opts.tls.requireClientCert === true, rejectUnauthorized: opts.tls.requireClientCert === true }, handler)
      : http.createServer(handler);
    const srv = httpServer;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(opts.httpPort ?? 0, '127.0.0.1', () => { srv.off('error', reject); resolve(); });
    });
    httpPort = (srv.address() as { port: number }).port;
  }

  const self: OtlpReceiver = {
    grpcEndpoint: grpcServer ? `${opts.tls ? 'https' : 'http'}://127.0.0.1:${grpcPort}` : '',
    httpEndpoint: httpServer ? `${opts.tls ? 'https' : 'http'}://127.0.0.1:${httpPort}` : '',
    grpcPort,
    httpPort,
    spans: () => received.slice(),
    waitForSpans(n: number, timeoutMs = 5000): Promise<ReceivedSpan[]> {
      if (received.length >= n) return Promise.resolve(received.slice());
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= n) { done(); resolve(received.slice()); }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`otlp-receiver: got ${received.length} of ${n} spans within ${timeoutMs} ms ` +
            `(${requests} requests, ${failed} failed)`));
        }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
      });
    },
    get requestsCount() { return requests; },
    get failedRequests() { return failed; },
    lastHeaders: () => ({ ...headers }),
    rawBodies: () => raw.slice(),
    setFailing,
    clear: () => { received.length = 0; },
    async close() {
      if (failTimer) clearTimeout(failTimer);
      const tasks: Promise<void>[] = [];
      if (grpcServer) {
        const s = grpcServer;
        s.forceShutdown();
      }
      if (httpServer) {
        const s = httpServer;
        tasks.push(new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }));
      }
      await Promise.all(tasks);
    },
  };
  return self;
}

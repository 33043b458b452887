// gRPC server spans, as the RPC semantic conventions say (semconv v1.45:
// docs/rpc/grpc.md and rpc-spans.md):
//   name            rpc.method ("shop.v1.Catalog/GetProduct"), or "grpc" when
//                   the method is _OTHER
//   rpc.system.name "grpc"
//   rpc.method      the path without its "/"; _OTHER (with rpc.method_original)
//                   when the server did not recognise it (see below)
//   rpc.status_code the status code's name ("OK", "NOT_FOUND", ...)
//   server.address  host of :authority; server.port only when :authority has a port
//   error.type      the status code's name, when the code is an error for a
//                   server: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
//                   UNAVAILABLE, DATA_LOSS; span status ERROR exactly then.
// v1.45 renamed v1.44's rpc.response.status_code to rpc.status_code
// (semantic-conventions #3921). With OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup the
// older experimental attributes are added too: rpc.system, rpc.service,
// rpc.grpc.status_code (the code as an integer). The old rpc.method held the
// method alone; its key is the stable one's, so the stable value is kept.
//
// A method is taken as not recognised when the call ends UNIMPLEMENTED with
// no grpc-message: what tonic's router and generated services answer for an
// unknown service or method (a handler that returns UNIMPLEMENTED itself
// usually says why).
import { attrKey, StatusCode, type SpanRecord } from '../../spans/record';
import { splitHostBytes } from '../../spans/http';
import type { HttpRequestFacts, HttpResponseFacts, ServerProtocol } from '../../spans/context';

export const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
  'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
/** Codes the conventions call errors for a server span. */
export const SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);
const UNKNOWN = 2, UNIMPLEMENTED = 12;

/** gRPC's HTTP/2 transport: RST_STREAM error code -> status code (grpc/doc/PROTOCOL-HTTP2.md). */
export const RST_TO_CODE: Record<string, number> = {
  NO_ERROR: 13, PROTOCOL_ERROR: 13, INTERNAL_ERROR: 13, FLOW_CONTROL_ERROR: 13, SETTINGS_TIMEOUT: 13, FRAME_SIZE_ERROR: 13,
  COMPRESSION_ERROR: 13, CONNECT_ERROR: 13, REFUSED_STREAM: 14, CANCEL: 1, ENHANCE_YOUR_CALM: 8, INADEQUATE_SECURITY: 7,
};

/** An HTTP status with no grpc-status -> status code (grpc/doc/http-grpc-status-mapping.md). */
function fromHttp(status: number): number {
  switch (status) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return UNKNOWN;
  }
}

const K = {
  system: attrKey('rpc.system.name'),
  method: attrKey('rpc.method'),
  methodOriginal: attrKey('rpc.method_original'),
  status: attrKey('rpc.status_code'),
  address: attrKey('server.address'),
  port: attrKey('server.port'),
  errorType: attrKey('error.type'),
  oldSystem: attrKey('rpc.system'),
  oldService: attrKey('rpc.service'),
  oldStatus: attrKey('rpc.grpc.status_code'),
};

export interface GrpcSettings {
  /** OTEL_SEMCONV_STABILITY_OPT_IN has rpc/dup: add the older experimental names. */
  rpcDup: boolean;
}

/** gRPC spans are this library's, though h2-server times them. */
export const SCOPE = 'otel-rust-agent/tonic';
const GRPC = 'application/grpc';
const GRPC_WEB = 'application/grpc-web';

function startsWith(b: Uint8Array, s: number, e: number, lit: string): boolean {
  if (e - s < lit.length) return false;
  for (let i = 0; i < lit.length; i++) {
    let c = b[s + i];
    if (c >= 0x41 && c <= 0x5a) c += 32;
    if (c !== lit.charCodeAt(i)) return false;
  }
  return true;
}

/** grpc-message is percent-encoded UTF-8 on the wire (gRPC's HTTP/2 protocol). */
function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try { return decodeURIComponent(s); } catch { return s; }
}

export class GrpcProtocol implements ServerProtocol {
  readonly library = 'tonic-server';
  /** Where each open call's :path is in its record's src (to rewrite rpc.method to _OTHER). */
  private paths = new WeakMap<SpanRecord, [number, number]>();

  constructor(private readonly settings: GrpcSettings) {}

  claims(req: HttpRequestFacts): boolean {
    // gRPC-Web carries its status in the body, not in HTTP/2 trailers: an HTTP span.
    const { src, contentTypeStart: s, contentTypeEnd: e } = req;
    if (s < 0 || !startsWith(src, s, e, GRPC) || startsWith(src, s, e, GRPC_WEB)) return false;
    return e - s === GRPC.length || src[s + GRPC.length] === 0x2b /* + */ || src[s + GRPC.length] === 0x3b /* ; */;
  }

  start(rec: SpanRecord, req: HttpRequestFacts): void {
    const b = req.src;
    this.paths.delete(rec); // records are pooled: forget a dropped span's entry
    rec.scope = SCOPE;
    rec.addString(K.system, 'grpc');
    if (req.pathStart >= 0 && req.pathEnd - req.pathStart > 1 && b[req.pathStart] === 0x2f) {
      rec.addBytes(K.method, req.pathStart + 1, req.pathEnd);
      this.paths.set(rec, [req.pathStart, req.pathEnd]);
      rec.name = Buffer.from(b.buffer, b.byteOffset + req.pathStart + 1, req.pathEnd - req.pathStart - 1).toString('utf8');
    } else {
      rec.addString(K.method, '_OTHER');
      rec.name = 'grpc';
    }
    if (req.authorityStart >= 0) {
      const hp = splitHostBytes(b, req.authorityStart, req.authorityEnd);
      if (hp) {
        rec.addBytes(K.address, hp.addrStart, hp.addrEnd);
        if (hp.port >= 0) rec.addInt(K.port, hp.port);
      }
    }
    if (this.settings.rpcDup) {
      rec.addString(K.oldSystem, 'grpc');
      const p = this.paths.get(rec);
      if (p) {
        let slash = p[1] - 1;
        while (slash > p[0] && b[slash] !== 0x2f) slash--;
        if (slash > p[0] + 1) rec.addBytes(K.oldService, p[0] + 1, slash);
      }
    }
  }

  responseHead(rec: SpanRecord, res: HttpResponseFacts): boolean {
    if (!res.endOfStream) return false; // the status comes with the trailers
    // Trailers-only: the status is in the head (or, without one, follows from the HTTP status).
    this.end(rec, res.grpcStatus >= 0 ? res.grpcStatus : res.status === 200 ? UNKNOWN : fromHttp(res.status), res.grpcMessage);
    return true;
  }

  reset(rec: SpanRecord, errorType: string): void {
    const code = RST_TO_CODE[errorType];
    if (code === undefined) {
      rec.statusCode = StatusCode.ERROR;
      rec.addString(K.errorType, errorType);
      return;
    }
    this.end(rec, code, undefined);
  }

  /** The call's status: attributes, span status, and _OTHER for an unknown method. */
  end(rec: SpanRecord, code: number, wireMessage: string | undefined): void {
    const message = wireMessage && percentDecode(wireMessage);
    const name = GRPC_CODES[code] ?? String(code);
    rec.addString(K.status, name);
    if (this.settings.rpcDup) rec.addInt(K.oldStatus, code);
    if (SERVER_ERRORS.has(code)) {
      rec.statusCode = StatusCode.ERROR;
      if (message) rec.statusMessage = message;
      rec.addString(K.errorType, name);
    }
    const p = this.paths.get(rec);
    if (code === UNIMPLEMENTED && !message && p) {
      rec.removeAttr(K.method);
      rec.addString(K.method, '_OTHER');
      rec.addBytes(K.methodOriginal, p[0] + 1, p[1]);
      rec.name = 'grpc';
    }
    this.paths.delete(rec);
  }
}

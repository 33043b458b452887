// Ring records of the h2 server probes -> typed events. A request record is
// copied once into one Buffer (its field byte ranges index it), so span
// attributes can point into it (SpanRecord.addBytes) without strings.
import { decodeHeader, readU64Number, copyBytes, DecodeError, type EventHeader } from '../../events/header';
import { H2_SERVER_LAYOUTS as L } from './layouts';

const RQ = L.structs.h2_request_event;
const RS = L.structs.h2_response_event;
const RT = L.structs.h2_reset_event;
const C = L.constants;

/** A field's bytes in H2RequestEvent.src: [start, end); start < 0 when absent. */
export interface Range { start: number; end: number }

export interface H2RequestEvent {
  type: 'h2.request';
  hdr: EventHeader;
  conn: number;
  requestId: number;
  taskId: number;
  streamId: number;
  /** H2_METHOD_* */
  method: number;
  endStream: boolean;
  nHeaders: number;
  /** The record's field area, copied: every Range below indexes it. */
  src: Buffer;
  path: Range; authority: Range; scheme: Range; host: Range; ua: Range;
  traceparent: Range; tracestate: Range; ctype: Range; methodName: Range;
}

export interface H2ResponseEvent {
  type: 'h2.response';
  hdr: EventHeader;
  conn: number;
  taskId: number;
  streamId: number;
  status: number;
  endStream: boolean;
  /** grpc-status in the head (end-of-stream heads only), -1: absent. */
  grpcStatus: number;
  grpcMessage: string | undefined;
}

export interface H2ResetEvent {
  type: 'h2.reset';
  hdr: EventHeader;
  conn: number;
  streamId: number;
  errorCode: number;
}

const NONE: Range = { start: -1, end: -1 };

function range(dv: DataView, off: number, lenAt: number, fieldAt: number, cap: number): Range {
  const n = dv.getUint16(off + lenAt, true);
  if (n > cap) throw new DecodeError(`h2 request field longer than its capacity (${n} > ${cap})`);
  if (n === 0) return NONE;
  const start = fieldAt - RQ.path;
  return { start, end: start + n };
}

export function decodeRequest(dv: DataView, off: number, len: number): H2RequestEvent {
  if (len < RQ.$size) throw new DecodeError(`h2 request record too short (${len})`);
  return {
    type: 'h2.request',
    hdr: decodeHeader(dv, off),
    conn: readU64Number(dv, off + RQ.conn),
    requestId: readU64Number(dv, off + RQ.request_id),
    taskId: readU64Number(dv, off + RQ.task_id),
    streamId: dv.getUint32(off + RQ.stream_id, true),
    method: dv.getUint8(off + RQ.method),
    endStream: dv.getUint8(off + RQ.end_stream) !== 0,
    nHeaders: dv.getUint16(off + RQ.n_headers, true),
    src: copyBytes(dv, off + RQ.path, RQ.$size - RQ.path),
    path: range(dv, off, RQ.path_len, RQ.path, C.H2_PATH_CAP),
    authority: range(dv, off, RQ.authority_len, RQ.authority, C.H2_AUTHORITY_CAP),
    scheme: range(dv, off, RQ.scheme_len, RQ.scheme, C.H2_SCHEME_CAP),
    host: range(dv, off, RQ.host_len, RQ.host, C.H2_HOST_CAP),
    ua: range(dv, off, RQ.ua_len, RQ.ua, C.H2_UA_CAP),
    traceparent: range(dv, off, RQ.traceparent_len, RQ.traceparent, C.H2_TRACEPARENT_CAP),
    tracestate: range(dv, off, RQ.tracestate_len, RQ.tracestate, C.H2_TRACESTATE_CAP),
    ctype: range(dv, off, RQ.ctype_len, RQ.ctype, C.H2_CTYPE_CAP),
    methodName: range(dv, off, RQ.method_len, RQ.method_name, C.H2_METHOD_CAP),
  };
}

export function decodeResponse(dv: DataView, off: number, len: number): H2ResponseEvent {
  if (len < RS.$size) throw new DecodeError(`h2 response record too short (${len})`);
  const n = dv.getUint16(off + RS.grpc_message_len, true);
  if (n > C.H2_GRPC_MESSAGE_CAP) throw new DecodeError('h2 response grpc-message overflows its capacity');
  return {
    type: 'h2.response',
    hdr: decodeHeader(dv, off),
    conn: readU64Number(dv, off + RS.conn),
    taskId: readU64Number(dv, off + RS.task_id),
    streamId: dv.getUint32(off + RS.stream_id, true),
    status: dv.getUint16(off + RS.status, true),
    endStream: dv.getUint8(off + RS.end_stream) !== 0,
    grpcStatus: dv.getInt16(off + RS.grpc_status, true),
    grpcMessage: n ? copyBytes(dv, off + RS.grpc_message, n).toString('utf8') : undefined,
  };
}

export function decodeReset(dv: DataView, off: number, len: number): H2ResetEvent {
  if (len < RT.$size) throw new DecodeError(`h2 reset record too short (${len})`);
  return {
    type: 'h2.reset',
    hdr: decodeHeader(dv, off),
    conn: readU64Number(dv, off + RT.conn),
    streamId: dv.getUint32(off + RT.stream_id, true),
    errorCode: dv.getUint32(off + RT.error_code, true),
  };
}

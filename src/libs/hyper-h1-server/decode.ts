// Ring records of the hyper HTTP/1 server probes -> typed events. Copies what
// it keeps: the DataView points into the ring, which the kernel reuses once
// the record is consumed. Words of hyper's structs are read as numbers
// (exact for addresses, which is all the span builder compares them with).
import { decodeHeader, readU64Number, copyBytes, DecodeError, type EventHeader } from '../../events/header';
import { H1_SERVER_LAYOUTS as L } from './layouts';

export interface H1RequestEvent {
  type: 'h1.request';
  hdr: EventHeader;
  bufAddr: number;
  /** ParseContext, raw words. */
  ctxWords: number[];
  /** tokio task that parsed it (the connection's task); 0 = unknown. */
  taskId: number;
  /** Bytes buffered in the BytesMut (may exceed what was captured). */
  bufLen: number;
  head: Buffer;
}

export interface H1ResponseEvent {
  type: 'h1.response';
  hdr: EventHeader;
  dstAddr: number;
  /** Encode, raw words. */
  msgWords: number[];
  entryTsNs: bigint;
  written: number;
  /** Status read at encode entry; 0 when it is in statusLine instead. */
  status: number;
  statusLine: Buffer;
}

function words(dv: DataView, off: number, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = readU64Number(dv, off + i * 8);
  return out;
}

export function decodeRequest(dv: DataView, off: number, len: number): H1RequestEvent {
  const S = L.structs.h1_request_event;
  if (len < S.head) throw new DecodeError(`h1 request record too short (${len})`);
  const captured = dv.getUint32(off + S.captured, true);
  if (captured > L.constants.H1_HEAD_CAPTURE || S.head + captured > len) throw new DecodeError('h1 request capture overflows record');
  return {
    type: 'h1.request',
    hdr: decodeHeader(dv, off),
    bufAddr: readU64Number(dv, off + S.buf_addr),
    ctxWords: words(dv, off + S.ctx_words, L.constants.H1_CTX_WORDS),
    taskId: readU64Number(dv, off + S.task_id),
    bufLen: dv.getUint32(off + S.buf_len, true),
    head: copyBytes(dv, off + S.head, captured),
  };
}

export function decodeResponse(dv: DataView, off: number, len: number): H1ResponseEvent {
  const S = L.structs.h1_response_event;
  if (len < S.status_line) throw new DecodeError(`h1 response record too short (${len})`);
  const captured = dv.getUint32(off + S.captured, true);
  if (captured > L.constants.H1_STATUS_CAPTURE || S.status_line + captured > len) throw new DecodeError('h1 response capture overflows record');
  return {
    type: 'h1.response',
    hdr: decodeHeader(dv, off),
    dstAddr: readU64Number(dv, off + S.dst_addr),
    msgWords: words(dv, off + S.msg_words, L.constants.H1_MSG_WORDS),
    entryTsNs: dv.getBigUint64(off + S.entry_ts_ns, true),
    written: dv.getUint32(off + S.written, true),
    status: dv.getUint16(off + S.status, true),
    statusLine: captured ? copyBytes(dv, off + S.status_line, captured) : EMPTY,
  };
}

const EMPTY = Buffer.alloc(0);

// Ring-buffer records -> typed events. Copies what it keeps: the DataView
// points into the ring, which the kernel reuses once the record is consumed.
import { EVENT_KIND, STRUCTS, CONSTANTS } from './layouts';

export interface EventHeader {
  kind: number;
  probeId: number;
  pid: number;
  tid: number;
  cpu: number;
  /** Index of the function symbol (instance) whose probe fired. */
  instance: number;
  tsNs: bigint;
}

export interface H1RequestEvent {
  type: 'h1.request';
  hdr: EventHeader;
  bufAddr: bigint;
  ctxWords: bigint[];
  bufLen: number;
  head: Buffer;
}

export interface H1ResponseEvent {
  type: 'h1.response';
  hdr: EventHeader;
  dstAddr: bigint;
  msgWords: bigint[];
  entryTsNs: bigint;
  written: number;
  /** Status read at encode entry; 0 when it is in statusLine instead. */
  status: number;
  statusLine: Buffer;
}

export type AgentEvent = H1RequestEvent | H1ResponseEvent;

const H = STRUCTS.event_header;

export function decodeHeader(dv: DataView, off: number): EventHeader {
  return {
    kind: dv.getUint16(off + H.kind, true),
    probeId: dv.getUint16(off + H.probe_id, true),
    pid: dv.getUint32(off + H.pid, true),
    tid: dv.getUint32(off + H.tid, true),
    cpu: dv.getUint16(off + H.cpu, true),
    instance: dv.getUint16(off + H.instance, true),
    tsNs: dv.getBigUint64(off + H.ts_ns, true),
  };
}

function words(dv: DataView, off: number, n: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(dv.getBigUint64(off + i * 8, true));
  return out;
}

function bytes(dv: DataView, off: number, n: number): Buffer {
  return Buffer.from(new Uint8Array(dv.buffer, dv.byteOffset + off, n)); // copies
}

export class DecodeError extends Error {}

/** Decodes one record; throws DecodeError on a record that does not fit its kind. */
export function decodeEvent(dv: DataView, off: number, len: number): AgentEvent {
  if (len < H.$size) throw new DecodeError(`record of ${len} bytes is shorter than the header`);
  const hdr = decodeHeader(dv, off);
  switch (hdr.kind) {
    case EVENT_KIND.H1_SERVER_REQUEST: {
      const S = STRUCTS.h1_request_event;
      if (len < S.head) throw new DecodeError(`h1 request record too short (${len})`);
      const captured = dv.getUint32(off + S.captured, true);
      if (captured > CONSTANTS.H1_HEAD_CAPTURE || S.head + captured > len) throw new DecodeError('h1 request capture overflows record');
      return {
        type: 'h1.request', hdr,
        bufAddr: dv.getBigUint64(off + S.buf_addr, true),
        ctxWords: words(dv, off + S.ctx_words, CONSTANTS.H1_CTX_WORDS),
        bufLen: dv.getUint32(off + S.buf_len, true),
        head: bytes(dv, off + S.head, captured),
      };
    }
    case EVENT_KIND.H1_SERVER_RESPONSE: {
      const S = STRUCTS.h1_response_event;
      if (len < S.status_line) throw new DecodeError(`h1 response record too short (${len})`);
      const captured = dv.getUint32(off + S.captured, true);
      if (captured > CONSTANTS.H1_STATUS_CAPTURE || S.status_line + captured > len) throw new DecodeError('h1 response capture overflows record');
      return {
        type: 'h1.response', hdr,
        dstAddr: dv.getBigUint64(off + S.dst_addr, true),
        msgWords: words(dv, off + S.msg_words, CONSTANTS.H1_MSG_WORDS),
        entryTsNs: dv.getBigUint64(off + S.entry_ts_ns, true),
        written: dv.getUint32(off + S.written, true),
        status: dv.getUint16(off + S.status, true),
        statusLine: bytes(dv, off + S.status_line, captured),
      };
    }
    default:
      throw new DecodeError(`unknown event kind ${hdr.kind}`);
  }
}

// Ring records of the rustls server probe -> typed events.
import { decodeHeader, readU64Number, DecodeError, type EventHeader } from '../../events/header';
import { RUSTLS_SERVER_LAYOUTS as L } from './layouts';

export interface RustlsHelloEvent {
  type: 'rustls.hello';
  hdr: EventHeader;
  taskId: number;
}

export function decodeHello(dv: DataView, off: number, len: number): RustlsHelloEvent {
  const S = L.structs.rustls_hello_event;
  if (len < S.$size) throw new DecodeError(`rustls hello record too short (${len})`);
  return { type: 'rustls.hello', hdr: decodeHeader(dv, off), taskId: readU64Number(dv, off + S.task_id) };
}

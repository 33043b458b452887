// Ring records of the tonic server probe -> typed events.
import { decodeHeader, readU64Number, copyBytes, DecodeError, type EventHeader } from '../../events/header';
import { TONIC_SERVER_LAYOUTS as L } from './layouts';

const S = L.structs.grpc_trailers_event;

export interface GrpcTrailersEvent {
  type: 'grpc.trailers';
  hdr: EventHeader;
  conn: number;
  taskId: number;
  streamId: number;
  /** grpc-status, -1 when absent. */
  grpcStatus: number;
  grpcMessage: string | undefined;
}

export function decodeTrailers(dv: DataView, off: number, len: number): GrpcTrailersEvent {
  if (len < S.$size) throw new DecodeError(`grpc trailers record too short (${len})`);
  const n = dv.getUint16(off + S.grpc_message_len, true);
  if (n > L.constants.GRPC_MESSAGE_CAP) throw new DecodeError('grpc-message overflows its capacity');
  return {
    type: 'grpc.trailers',
    hdr: decodeHeader(dv, off),
    conn: readU64Number(dv, off + S.conn),
    taskId: readU64Number(dv, off + S.task_id),
    streamId: dv.getUint32(off + S.stream_id, true),
    grpcStatus: dv.getInt16(off + S.grpc_status, true),
    grpcMessage: n ? copyBytes(dv, off + S.grpc_message, n).toString('utf8') : undefined,
  };
}

// Ring records of the axum probe -> typed events.
import { decodeHeader, readU64Number, DecodeError, type EventHeader } from '../../events/header';
import { AXUM_LAYOUTS as L } from './layouts';

const S = L.structs.axum_route_event;

export interface AxumRouteEvent {
  type: 'axum.route';
  hdr: EventHeader;
  requestId: number;
  taskId: number;
  map: number;
  ctrl: number;
  bucketMask: number;
  items: number;
  routeId: number;
  bucketSize: number;
  bucketId: number;
  bucketPtr: number;
  bucketLen: number;
  arcData: number;
}

export function decodeRoute(dv: DataView, off: number, len: number): AxumRouteEvent {
  if (len < S.$size) throw new DecodeError(`axum route record too short (${len})`);
  return {
    type: 'axum.route',
    hdr: decodeHeader(dv, off),
    requestId: readU64Number(dv, off + S.request_id),
    taskId: readU64Number(dv, off + S.task_id),
    map: readU64Number(dv, off + S.map),
    ctrl: readU64Number(dv, off + S.ctrl),
    bucketMask: readU64Number(dv, off + S.bucket_mask),
    items: readU64Number(dv, off + S.items),
    routeId: dv.getUint32(off + S.route_id, true),
    bucketSize: dv.getUint16(off + S.bucket_size, true),
    bucketId: dv.getUint16(off + S.bucket_id, true),
    bucketPtr: dv.getUint16(off + S.bucket_ptr, true),
    bucketLen: dv.getUint16(off + S.bucket_len, true),
    arcData: dv.getUint16(off + S.arc_data, true),
  };
}

// Offsets of the events in ./events.h, as the decoders use them, and the
// config slots offsets.ts fills. test/unit/event-layout.test.ts checks them.
import type { EventLayouts } from '../library';

export const AXUM_LAYOUTS = {
  kinds: { AXUM_ROUTE: 0x20 },
  constants: {
    AX_CFG_EXT_TO_ENTRIES: 0, AX_CFG_MAP_CTRL: 1, AX_CFG_MAP_MASK: 2, AX_CFG_MAP_ITEMS: 3, AX_CFG_BUCKET_SIZE: 4,
    AX_CFG_BUCKET_ID: 5, AX_CFG_BUCKET_PTR: 6, AX_CFG_BUCKET_LEN: 7, AX_CFG_ARC_DATA: 8, AX_CFG_SLOTS: 9,
  },
  structs: {
    axum_route_event: {
      hdr: 0, request_id: 24, task_id: 32, map: 40, ctrl: 48, bucket_mask: 56, items: 64, route_id: 72,
      bucket_size: 76, bucket_id: 78, bucket_ptr: 80, bucket_len: 82, arc_data: 84, $size: 88,
    },
  },
} as const satisfies EventLayouts;

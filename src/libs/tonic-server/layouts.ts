// Offsets of the events in ./events.h, as the decoders use them, and the
// config slots offsets.ts fills. test/unit/event-layout.test.ts checks them.
import type { EventLayouts } from '../library';

export const TONIC_SERVER_LAYOUTS = {
  kinds: { TONIC_SERVER_TRAILERS: 0x30 },
  constants: { GRPC_MESSAGE_CAP: 128, GT_CFG_SELF_ARC: 0, GT_CFG_SELF_STREAM_ID: 1, GT_CFG_ARC_INNER: 2, GT_CFG_HM: 8, GT_CFG_SLOTS: 22 },
  structs: {
    grpc_trailers_event: { hdr: 0, conn: 24, task_id: 32, stream_id: 40, grpc_status: 44, grpc_message_len: 46, grpc_message: 48, $size: 176 },
  },
} as const satisfies EventLayouts;

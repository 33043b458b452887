// Offsets of the events in ./events.h, as the decoders use them, and the
// config slots offsets.ts fills. test/unit/event-layout.test.ts compiles
// events.h and fails if any size, offset, constant or kind here differs.
import type { EventLayouts } from '../library';

export const H2_SERVER_LAYOUTS = {
  kinds: { H2_SERVER_REQUEST: 0x10, H2_SERVER_RESPONSE: 0x11, H2_SERVER_RESET: 0x12 },
  constants: {
    H2_PATH_CAP: 512, H2_AUTHORITY_CAP: 128, H2_SCHEME_CAP: 8, H2_HOST_CAP: 128, H2_UA_CAP: 256,
    H2_TRACEPARENT_CAP: 64, H2_TRACESTATE_CAP: 256, H2_CTYPE_CAP: 64, H2_METHOD_CAP: 32, H2_GRPC_MESSAGE_CAP: 128,
    H2_METHOD_EXTENSION: 0, H2_METHOD_GET: 1, H2_METHOD_QUERY: 10, H2_METHOD_UNKNOWN: 255,
    H2_CFG_FRAME_STREAM_ID: 0, H2_CFG_FRAME_FLAGS: 1, H2_CFG_PSEUDO: 2, H2_CFG_FIELDS: 3,
    H2_CFG_P_METHOD: 4, H2_CFG_P_SCHEME: 5, H2_CFG_P_AUTHORITY: 6, H2_CFG_P_PATH: 7, H2_CFG_P_STATUS: 8,
    H2_CFG_M_TAG: 9, H2_CFG_M_NONE: 10, H2_CFG_M_GET: 11, H2_CFG_M_QUERY: 20,
    H2_CFG_M_INLINE: 21, H2_CFG_M_INLINE_BYTES: 22, H2_CFG_M_INLINE_LEN: 23,
    H2_CFG_M_ALLOC: 24, H2_CFG_M_ALLOC_PTR: 25, H2_CFG_M_ALLOC_LEN: 26,
    H2_CFG_PTR_STORE: 27, H2_CFG_PTR_STREAM_ID: 28, H2_CFG_INNER_STORE: 29, H2_CFG_INNER_COUNTS: 30, H2_CFG_INNER_RECV: 31,
    H2_CFG_STD_UA: 32, H2_CFG_STD_CTYPE: 33, H2_CFG_STD_HOST: 34, H2_CFG_HM: 40, H2_CFG_REQUEST_SLOTS: 54,
    H2R_CFG_SELF_ARC: 0, H2R_CFG_SELF_STREAM_ID: 1, H2R_CFG_ARC_INNER: 2, H2R_CFG_STATUS: 3, H2R_CFG_HEADERS: 4,
    H2R_CFG_INNER_COUNTS: 5, H2R_CFG_INNER_RECV: 6, H2R_CFG_HM: 40, H2R_CFG_SLOTS: 54,
  },
  structs: {
    h2_request_event: {
      hdr: 0, conn: 24, request_id: 32, task_id: 40, stream_id: 48, method: 52, end_stream: 53, n_headers: 54,
      path_len: 56, authority_len: 58, scheme_len: 60, host_len: 62, ua_len: 64, traceparent_len: 66, tracestate_len: 68,
      ctype_len: 70, method_len: 72, path: 80, authority: 592, scheme: 720, host: 728, ua: 856, traceparent: 1112,
      tracestate: 1176, ctype: 1432, method_name: 1496, $size: 1528,
    },
    h2_response_event: {
      hdr: 0, conn: 24, task_id: 32, stream_id: 40, status: 44, end_stream: 46, grpc_status: 48, grpc_message_len: 50,
      grpc_message: 56, $size: 184,
    },
    h2_reset_event: { hdr: 0, conn: 24, stream_id: 32, error_code: 36, $size: 40 },
  },
} as const satisfies EventLayouts;

// Offsets of the events in ./events.h, as the span builder uses them.
// test/unit/event-layout.test.ts compiles events.h and fails if any size,
// offset, constant or kind here differs.
import type { EventLayouts } from '../library';

export const H2_CLIENT_LAYOUTS = {
  kinds: { H2_CLIENT_REQUEST: 0xa0, H2_CLIENT_RESPONSE: 0xa1, H2_CLIENT_TRAILERS: 0xa2, H2_CLIENT_RESET: 0xa3, H2_CLIENT_PROPAGATION: 0xa4 },
  constants: { H2C_PATH_CAP: 512, H2C_AUTHORITY_CAP: 128, H2C_SCHEME_CAP: 8, H2C_CTYPE_CAP: 64, H2C_METHOD_CAP: 32, H2C_GRPC_MESSAGE_CAP: 128, H2C_PROP_MAX_FRAMES: 256, H2C_PROP_FIELD: 69 },
  structs: {
    h2_client_request_event: {
      hdr: 0, conn: 24, request_id: 32, task_id: 40, stream_id: 48, method: 52, end_stream: 53, path_len: 54,
      authority_len: 56, scheme_len: 58, ctype_len: 60, method_len: 62, path: 64, authority: 576, scheme: 704,
      ctype: 712, method_name: 776, span_id: 808, prop: 816, $size: 824,
    },
    h2_client_response_event: {
      hdr: 0, conn: 24, stream_id: 32, status: 36, end_stream: 38, grpc_status: 40, grpc_message_len: 42,
      reset_code: 44, grpc_message: 48, $size: 176,
    },
    h2c_propagation_event: {
      hdr: 0, span_id: 24, trace_id: 32, parent_id: 48, stream_id: 56, msg_size: 60, flags: 64, outcome: 65, state: 66, $size: 72,
    },
  },
} as const satisfies EventLayouts;

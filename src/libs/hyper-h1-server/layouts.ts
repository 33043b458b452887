// Offsets of the events in ./events.h, as the decoders use them.
// test/unit/event-layout.test.ts compiles events.h and fails if any size,
// offset, constant or kind here differs.
import type { EventLayouts } from '../library';

export const H1_SERVER_LAYOUTS = {
  kinds: { H1_SERVER_REQUEST: 0x01, H1_SERVER_RESPONSE: 0x02, H1_SERVER_RESPONSE_CONN: 0x03 },
  constants: {
    H1_HEAD_CAPTURE: 2048,
    H1_HEAD_CAPTURE_SMALL: 512,
    H1_CTX_WORDS: 8,
    H1_MSG_WORDS: 6,
    H1_STATUS_CAPTURE: 64,
    H1_CTX_IDS: 1,
    H1_CTX_REMOTE: 2,
  },
  structs: {
    h1_request_event: {
      hdr: 0, buf_addr: 24, ctx_words: 32, task_id: 96, buf_len: 104, captured: 108, trace_id: 112, span_id: 128, ctx_flags: 136, head: 144, $size: 144 + 2048,
    },
    h1_response_event: {
      hdr: 0, dst_addr: 24, msg_words: 32, entry_ts_ns: 80, written: 88, captured: 92, status: 96, status_line: 104, $size: 104 + 64,
    },
  },
} as const satisfies EventLayouts;

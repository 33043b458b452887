// Offsets of the events in ./events.h, as the span builder uses them.
// test/unit/event-layout.test.ts compiles events.h and fails if any size,
// offset, constant or kind here differs.
import type { EventLayouts } from '../library';

export const H1_CLIENT_LAYOUTS = {
  kinds: { H1_CLIENT_REQUEST: 0x50, H1_CLIENT_RESPONSE: 0x51, REQWEST_CALL: 0x52, REQWEST_BLOCKING_CALL: 0x53, H1_CLIENT_PROPAGATION: 0x54, REQWEST_ERROR: 0x55 },
  constants: { OTEL_CX_OFF: 0, OTEL_CX_NONE: 1, OTEL_CX_BUSY: 2, OTEL_CX_FAULT: 3, OTEL_CX_UNSEEN: 4, OTEL_CX_OK: 5, TCTX_OFF: 0, TCTX_NONE: 1, TCTX_INVALID: 2, TCTX_FAULT: 3, TCTX_OK: 4, H1C_MSG_WORDS: 6, H1C_CTX_WORDS: 8, H1C_REQ_CAPTURE: 1024, H1C_RES_CAPTURE: 512, RQ_SCAN_WORDS: 32, RQ_URL_CAPTURE: 512, H1C_PROP_SCAN: 1024, H1C_PROP_LINE: 70,
    RQE_OTHER: 0, RQE_TCP_CONNECT: 1, RQE_DNS: 2, RQE_WORDS: 8 },
  structs: {
    h1c_request_event: { hdr: 0, msg_words: 24, dst_addr: 72, task_id: 80, vec_ptr_idx: 88, vec_cap_idx: 92, span_id: 96, $size: 104 },
    h1c_response_event: {
      hdr: 0, key: 24, req_ts_ns: 32, req_task_id: 40, req_tid: 48, res_len: 52, req_captured: 56, res_captured: 60,
      span_id: 64, res_head: 72, req_head: 72 + 512, $size: 72 + 512 + 1024,
    },
    reqwest_call_event: { hdr: 0, task_id: 24, url_len: 32, captured: 36, comm: 40, sdk_trace_lo: 56, sdk_trace_hi: 64, sdk_span_id: 72, sdk_state: 80, tctx_state: 81, tctx_trace_id: 88, tctx_span_id: 104, url: 112, $size: 112 + 512 },
    reqwest_error_event: { hdr: 0, task_id: 24, os_error: 32, what: 36, $size: 40 },
    h1c_propagation_event: { hdr: 0, span_id: 24, trace_id: 32, parent_id: 48, flags: 56, outcome: 57, state: 58, msg_size: 60, $size: 64 },
  },
} as const satisfies EventLayouts;

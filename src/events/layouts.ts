// Byte layouts of the events in bpf/include/events.h, as offsets the decoders
// use. This file mirrors the header; test/unit/event-layout.test.ts compiles
// the header and fails if any size, offset or constant here differs.

export const EVENT_KIND = {
  H1_SERVER_REQUEST: 1,
  H1_SERVER_RESPONSE: 2,
} as const;

export const CONSTANTS = {
  MAX_PROBES: 256,
  H1_HEAD_CAPTURE: 2048,
  H1_HEAD_CAPTURE_SMALL: 512,
  H1_CTX_WORDS: 8,
  H1_MSG_WORDS: 6,
  H1_STATUS_CAPTURE: 64,
} as const;

/** struct name -> { field -> offset }, plus its sizeof under `$size`. */
export const STRUCTS = {
  event_header: { kind: 0, probe_id: 2, pid: 4, tid: 8, cpu: 12, instance: 14, ts_ns: 16, $size: 24 },
  probe_stats: { hits: 0, events: 8, drops: 16, bad_layout: 24, no_entry: 32, $size: 64 },
  h1_request_event: { hdr: 0, buf_addr: 24, ctx_words: 32, buf_len: 96, captured: 100, head: 104, $size: 104 + 2048 },
  h1_response_event: {
    hdr: 0, dst_addr: 24, msg_words: 32, entry_ts_ns: 80, written: 88, captured: 92, status: 96, status_line: 104, $size: 104 + 64,
  },
} as const;

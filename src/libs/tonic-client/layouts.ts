// Offsets of the event in ./events.h and the config slots offsets.ts fills.
// test/unit/event-layout.test.ts compiles events.h and checks them.
import type { EventLayouts } from '../library';

export const TONIC_CLIENT_LAYOUTS = {
  kinds: { TONIC_CLIENT_CALL: 0x60, TONIC_CLIENT_ERROR: 0x61 },
  constants: {
    TONIC_PATH_CAP: 256, TC_CFG_PATH_DATA: 0, TC_CFG_BYTES_PTR: 1, TC_CFG_BYTES_LEN: 2, TC_CFG_SLOTS: 3,
    TC_ERR_FN: 0, TC_ERR_N_TRANSPORT: 1, TC_ERR_TRANSPORT: 2, TC_ERR_N_CONNECT: 10, TC_ERR_CONNECT: 11, TC_ERR_MAX: 8, TC_ERR_SLOTS: 19, TC_ERR_WORDS: 8,
  },
  structs: {
    tonic_call_event: { hdr: 0, task_id: 24, path_len: 32, path: 40, $size: 296 },
    tonic_error_event: { hdr: 0, task_id: 24, code: 32, $size: 40 },
  },
} as const satisfies EventLayouts;

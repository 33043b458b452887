// Offsets of the events in ./events.h (checked by test/unit/event-layout.test.ts).
import type { EventLayouts } from '../library';

export const RUSTLS_SERVER_LAYOUTS = {
  kinds: { RUSTLS_SERVER_HELLO: 0x90 },
  constants: {},
  structs: { rustls_hello_event: { hdr: 0, task_id: 24, $size: 32 } },
} as const satisfies EventLayouts;

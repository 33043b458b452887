// Offsets of the events in ./events.h, as the span builder uses them.
// test/unit/event-layout.test.ts compiles events.h and fails if any size,
// offset, constant or kind here differs.
import type { EventLayouts } from '../library';

export const OTEL_SDK_LAYOUTS = {
  kinds: { OTEL_SDK_SAMPLE: 0x80 },
  constants: {},
  structs: {
    otel_sdk_sample_event: { hdr: 0, task_id: 24, trace_lo: 32, trace_hi: 40, parent_ctx: 48, $size: 56 },
  },
} as const satisfies EventLayouts;

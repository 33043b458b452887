// Offsets of the events in ./events.h, as the span builder uses them.
// test/unit/event-layout.test.ts compiles events.h and fails if any size,
// offset, constant or kind here differs.
import type { EventLayouts } from '../library';

export const TOKIO_SPAWN_LAYOUTS = {
  kinds: { TOKIO_SPAWN: 0x70 },
  constants: { TOKIO_CFG_VTABLE_ID_OFFSET: 0, TOKIO_HEADER_VTABLE: 16, TOKIO_ID_OFFSET_MAX: 4096 },
  structs: {
    tokio_spawn_event: { hdr: 0, parent_task_id: 24, child_task_id: 32, $size: 40 },
  },
} as const satisfies EventLayouts;

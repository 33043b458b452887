/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of the tokio probes (probes.bpf.c). Mirrored by layouts.ts, which
 * test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_TOKIO_EVENTS_H
#define OTEL_RUST_AGENT_TOKIO_EVENTS_H

#include "../../../bpf/include/events.h"

enum tokio_event_kind {
	EV_TOKIO_SPAWN = 0x70,	/* a task was bound to its runtime (or handed to the blocking pool) */
};

/* Slots of the spawn probes' config (struct probe_config). */
#define TOKIO_CFG_VTABLE_ID_OFFSET 0	/* offset of Vtable.id_offset inside tokio's task Vtable */
/* Header.vtable: task::core::Header is repr(C) {state, queue_next, vtable, ...}. */
#define TOKIO_HEADER_VTABLE 16
/* Bound of Vtable.id_offset (the id sits in the task cell's Core, right after the Header). */
#define TOKIO_ID_OFFSET_MAX 4096

struct tokio_spawn_event {
	struct event_header hdr;
	__u64 parent_task_id;	/* task polled on the spawning thread (0: none, e.g. block_on's future) */
	__u64 child_task_id;	/* id of the new task */
};

#endif

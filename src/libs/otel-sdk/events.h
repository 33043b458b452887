/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of the OpenTelemetry Rust SDK probe (probes.bpf.c). Mirrored by
 * layouts.ts, which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_OTEL_SDK_EVENTS_H
#define OTEL_RUST_AGENT_OTEL_SDK_EVENTS_H

#include "../../../bpf/include/events.h"

enum otel_sdk_event_kind {
	EV_OTEL_SDK_SAMPLE = 0x80,	/* <Sampler as ShouldSample>::should_sample entered: a span is being built */
};

/*
 * The trace id the SDK is about to give the span, as the sampler receives it
 * (a u128 by value: two argument registers, low half first), the caller's
 * thread (header) and tokio task. Nothing is dereferenced.
 */
struct otel_sdk_sample_event {
	struct event_header hdr;
	__u64 task_id;		/* the caller's tokio task (0: none / unknown) */
	__u64 trace_lo;		/* low 64 bits of the u128 trace id */
	__u64 trace_hi;		/* high 64 bits */
	__u64 parent_ctx;	/* Option<&Context>: the parent context's address (0: None) */
};

#endif

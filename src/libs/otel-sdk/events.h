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
/* What the current-span reader (current.h) found, as another library's
 * event reports it (hyper-h1-client's reqwest_call_event.sdk_state). */
#define OTEL_CX_OFF	0	/* not located for this binary (inspect says why) */
#define OTEL_CX_NONE	1	/* no current span: thread-local not initialised, or a Context without span */
#define OTEL_CX_BUSY	2	/* the RefCell is mutably borrowed: not read */
#define OTEL_CX_FAULT	3	/* a read failed, or a value failed its shape check */
#define OTEL_CX_UNSEEN	4	/* ids read, but the trace id was never sighted in this process: not used */
#define OTEL_CX_OK	5	/* ids read and confirmed */

/* What the OTEP 4947 thread-context reader (current.h) found (tctx_state). */
#define TCTX_OFF	0	/* the executable has no otel_thread_ctx_v1 slot (or it is not located) */
#define TCTX_NONE	1	/* no record attached on this thread */
#define TCTX_INVALID	2	/* a record whose valid byte is not 1, or without ids */
#define TCTX_FAULT	3	/* a read failed */
#define TCTX_OK		4	/* a valid record with ids */

struct otel_sdk_sample_event {
	struct event_header hdr;
	__u64 task_id;		/* the caller's tokio task (0: none / unknown) */
	__u64 trace_lo;		/* low 64 bits of the u128 trace id */
	__u64 trace_hi;		/* high 64 bits */
	__u64 parent_ctx;	/* Option<&Context>: the parent context's address (0: None) */
};

#endif

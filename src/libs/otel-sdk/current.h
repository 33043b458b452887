/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The application's OpenTelemetry current span, read from BPF where another
 * probe fires (hyper-h1-client's reqwest call probe): no probe of its own.
 *
 * The OpenTelemetry API keeps the thread's current Context in a lazily
 * initialised thread-local, `opentelemetry::context::CURRENT_CONTEXT`
 * (RefCell<Context> up to 0.28, RefCell<ContextStack> whose current_cx is the
 * active Context later). `FutureExt::with_context` attaches its Context there
 * for every poll of the future it wraps, so a call made inside it runs with
 * the manual span there. The agent locates the thread-local in the
 * executable's TLS block and the fields on the way to the span's ids in the
 * offsets database (src/libs/otel-sdk/context.ts, struct binary_context);
 * this reads them with bpf_probe_read_user (a bad address cannot fault the
 * process) and checks, before anything is used:
 *   - the storage's state byte says "alive" (never a torn-down value);
 *   - the RefCell is not mutably borrowed (not mid-update);
 *   - the span pointer is a user pointer, the ids are non-zero;
 *   - the trace id is one the SDK's sampler probe saw being given to a span
 *     of this process (otel_sdk_traces, filled by src/libs/otel-sdk's
 *     should_sample program): live data confirming the whole chain.
 * Anything else is reported as such in the event and never used.
 */
#ifndef OTEL_RUST_AGENT_OTEL_SDK_CURRENT_H
#define OTEL_RUST_AGENT_OTEL_SDK_CURRENT_H

#include "common.h"
#include "events.h"	/* this directory's: OTEL_CX_* */

/* Trace ids the SDK gave spans, per process (pid, low, high half of the
 * u128): written by the sampler probe, read by the current-span reader. The
 * loader shares the map between the objects that declare it. */
struct otel_sdk_trace_key {
	__u32 pid;
	__u32 _pad;
	__u64 lo;
	__u64 hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct otel_sdk_trace_key);
	__type(value, __u64);	/* when it was sighted (ns) */
} otel_sdk_traces SEC(".maps");

static __always_inline __u8 otel_current_span(__u64 cookie, __u32 pid, __u64 *trace_lo, __u64 *trace_hi, __u64 *span_id)
{
	__u32 slot = COOKIE_BINARY(cookie);
	const struct binary_context *b = bpf_map_lookup_elem(&binary_contexts, &slot);
	if (!b || !(b->flags & BINCTX_OTEL_CX))
		return OTEL_CX_OFF;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 fs = BPF_CORE_READ(t, thread.fsbase);
	if (!user_ptr_ok(fs))
		return OTEL_CX_FAULT;
	__u8 state = 0;
	if (bpf_probe_read_user(&state, 1, (const void *)(fs + b->otel_state_off)))
		return OTEL_CX_FAULT;
	if (state != b->otel_alive)
		return OTEL_CX_NONE;
	__s64 borrow = 0;
	if (bpf_probe_read_user(&borrow, sizeof(borrow), (const void *)(fs + b->otel_borrow_off)))
		return OTEL_CX_FAULT;
	if (borrow < 0)
		return OTEL_CX_BUSY;
	__u64 arc = 0;
	if (bpf_probe_read_user(&arc, sizeof(arc), (const void *)(fs + b->otel_span_ptr_off)))
		return OTEL_CX_FAULT;
	if (arc == 0)
		return OTEL_CX_NONE;
	if (!user_ptr_ok(arc))
		return OTEL_CX_FAULT;
	__u64 tr[2] = {};
	__u64 sp = 0;
	if (bpf_probe_read_user(tr, sizeof(tr), (const void *)(arc + b->otel_trace_off)) ||
	    bpf_probe_read_user(&sp, sizeof(sp), (const void *)(arc + b->otel_span_off)))
		return OTEL_CX_FAULT;
	if ((tr[0] | tr[1]) == 0 || sp == 0)
		return OTEL_CX_FAULT;
	*trace_lo = tr[0];
	*trace_hi = tr[1];
	*span_id = sp;
	struct otel_sdk_trace_key k = { .pid = pid, .lo = tr[0], .hi = tr[1] };
	if (!bpf_map_lookup_elem(&otel_sdk_traces, &k))
		return OTEL_CX_UNSEEN;
	return OTEL_CX_OK;
}

/*
 * OTEP 4947: the Thread-Local Context Record the process publishes for this
 * thread through the `otel_thread_ctx_v1` TLS slot (any language or SDK;
 * libotelctx writes it). A fixed ABI, no offsets to look up: 28-byte header
 * { trace_id[16], span_id[8] (W3C byte order), valid (1 = usable),
 * trace_flags, attrs_data_size }. The writer stores the pointer with one
 * 8-byte store and flips `valid` around in-place updates, so a record read
 * with valid == 1 and non-zero ids is a published context.
 */
static __always_inline __u8 otel_thread_ctx(__u64 cookie, __u8 *trace_id, __u8 *span_id)
{
	__u32 slot = COOKIE_BINARY(cookie);
	const struct binary_context *b = bpf_map_lookup_elem(&binary_contexts, &slot);
	if (!b || !(b->flags & BINCTX_THREAD_CTX))
		return TCTX_OFF;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 fs = BPF_CORE_READ(t, thread.fsbase);
	if (!user_ptr_ok(fs))
		return TCTX_FAULT;
	__u64 rec = 0;
	if (bpf_probe_read_user(&rec, sizeof(rec), (const void *)(fs + b->thread_ctx_off)))
		return TCTX_FAULT;
	if (rec == 0)
		return TCTX_NONE;
	if (!user_ptr_ok(rec) || (rec & 1))
		return TCTX_FAULT;
	__u8 h[28] = {};
	if (bpf_probe_read_user(h, sizeof(h), (const void *)rec))
		return TCTX_FAULT;
	if (h[24] != 1)
		return TCTX_INVALID;
	__u64 t0, t1, s0;
	__builtin_memcpy(&t0, h, 8);
	__builtin_memcpy(&t1, h + 8, 8);
	__builtin_memcpy(&s0, h + 16, 8);
	if ((t0 | t1) == 0 || s0 == 0)
		return TCTX_INVALID;
	__builtin_memcpy(trace_id, h, 16);
	__builtin_memcpy(span_id, h + 16, 8);
	return TCTX_OK;
}

#endif

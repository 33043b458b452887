// SPDX-License-Identifier: Apache-2.0
/*
 * OpenTelemetry Rust SDK probe (opentelemetry_sdk 0.2x-0.3x): a span is being
 * built by the application's own tracer.
 *
 *   <Sampler as ShouldSample>::should_sample  entry (a push: emulated)
 *
 * SdkTracer::build_with_context asks the configured sampler, through the
 * `Box<dyn ShouldSample>` of the provider's config (so the function always
 * has an out-of-line copy), right after it picked the span's trace id: a
 * new one for a root span, the parent's for a child. The trace id is an
 * argument passed by value (u128, two registers); the registers are read,
 * no memory. Which registers carry it is decided by the agent from the
 * function's signature (probes.ts) and checked on live data: the ids seen
 * here are only ever compared with the trace ids of spans the application
 * exports (the relay), so a wrong pair matches nothing and places nothing.
 *
 * The ParentBased sampler delegates to its inner sampler: a span can give
 * two hits with the same trace id (the agent keeps the first).
 */
#include "common.h"
#include "events.h"
#include "current.h"

SEC("uprobe")
int otel_sdk_should_sample(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	struct otel_sdk_sample_event e = {};
	fill_header(&e.hdr, EV_OTEL_SDK_SAMPLE, cookie);
	e.task_id = current_task_id(cookie);
	/* Rust ABI, x86-64: rdi = &mut SamplingResult (returned through
	 * memory), rsi = &self, rdx = Option<&Context>, rcx:r8 = trace id. */
	e.parent_ctx = PT_REGS_PARM3(ctx);
	e.trace_lo = PT_REGS_PARM4(ctx);
	e.trace_hi = PT_REGS_PARM5(ctx);
	/* For the current-span reader (current.h): a trace id this process's
	 * SDK really gave a span. Only first sightings matter; a later one just
	 * refreshes the time. */
	if (e.trace_lo | e.trace_hi) {
		struct otel_sdk_trace_key k = { .pid = e.hdr.pid, .lo = e.trace_lo, .hi = e.trace_hi };
		__u64 now = e.hdr.ts_ns;
		bpf_map_update_elem(&otel_sdk_traces, &k, &now, BPF_ANY);
	}
	submit(st, &e, sizeof(e));
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every event the BPF programs send to the agent is defined here, once.
 * The agent's TypeScript decoders (src/events/layouts.ts) are checked against
 * this header by test/unit/event-layout.test.ts, which compiles it and
 * compares sizeof/offsetof with what the decoders use.
 *
 * Rules: fixed-width types only, explicit padding, 8-byte aligned structs.
 */
#ifndef OTEL_RUST_AGENT_EVENTS_H
#define OTEL_RUST_AGENT_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * Event kinds are defined by each library, in src/libs/<library>/events.h,
 * inside the range given to it here (the layout test checks that no two
 * libraries share a kind):
 *   0x01-0x0f  hyper-h1-server      0x40-0x4f  reqwest
 *   0x10-0x1f  h2-server            0x50-0x5f  hyper-h1-client
 *   0x20-0x2f  axum                 0x60-0x6f  tonic-client
 *   0x30-0x3f  tonic-server         0x70-0x7f  tokio-spawn
 *   0x90-0x9f  rustls-server        0x80-0x8f  otel-sdk
 *   0xa0-0xaf  h2-client
 *   0xf0-0xff  the agent's own events (bpf/process.bpf.c, below)
 */

/* Common header of every event (24 bytes). */
struct event_header {
	__u16 kind;		/* enum event_kind */
	__u16 probe_id;		/* which attached probe fired (the attach cookie's low 16 bits) */
	__u32 pid;		/* tgid of the traced process */
	__u32 tid;		/* kernel thread id */
	__u16 cpu;
	__u16 instance;		/* which symbol instance fired (cookie bits 48..55) */
	__u64 ts_ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/*
 * Attach cookie: the agent gives each attached offset a 64-bit cookie.
 *   bits  0..15  probe id (index in the agent's probe table, echoed in every event)
 *   bits 16..23  layout of the Rust value the probe reads: word index of
 *                ptr (bits 16-17), len (18-19) and cap (20-21) inside a
 *                Vec<u8> / BytesMut, chosen by the agent from its offsets
 *                database and re-checked on every hit (see common.h).
 */
#define COOKIE_PROBE_ID(c)	((__u16)((c) & 0xffff))
/*   bits 48..55  instance: index of the function symbol the site belongs to
 *                (a binary can link two hyper versions; each has its own
 *                struct layouts, so the agent keeps their state apart) */
#define COOKIE_INSTANCE(c)	((__u16)(((c) >> 48) & 0xff))
/*   bits 56..63  binary slot: which attached executable the site belongs to;
 *                indexes `binary_contexts` (common.h), the per-binary facts
 *                every program may use (where tokio keeps the current task id) */
#define COOKIE_BINARY(c)	((__u32)(((c) >> 56) & 0xff))
/* Programs that read a probe configuration (struct probe_config) find its
 * index in `probe_configs` at
 *   bits 16..31  config index (0: none)
 * and use no other bits of 16..47. */
#define COOKIE_CONFIG(c)	((__u32)(((c) >> 16) & 0xffff))
/* Programs that follow a pointer field to a u16 (a "field chain") use instead:
 *   bits 16..23  word index of the pointer inside the argument struct
 *   bits 24..39  byte offset of the u16 behind that pointer */
#define COOKIE_CHAIN_WORD(c)	((__u32)(((c) >> 16) & 0xff))
#define COOKIE_CHAIN_OFF(c)	((__u32)(((c) >> 24) & 0xffff))
#define COOKIE_PTR_IDX(c)	((__u32)(((c) >> 16) & 3))
#define COOKIE_LEN_IDX(c)	((__u32)(((c) >> 18) & 3))
#define COOKIE_CAP_IDX(c)	((__u32)(((c) >> 20) & 3))

/* Per-probe counters, one slot per probe id in the per-CPU array `probe_stats`. */
struct probe_stats {
	__u64 hits;		/* times the probe ran */
	__u64 events;		/* events written to the ring buffer */
	__u64 drops;		/* events lost because the ring buffer was full */
	__u64 bad_layout;	/* values that failed the layout check: probe data not trusted */
	__u64 no_entry;		/* return-site hits without a matching entry */
	__u64 _reserved[3];
};
#define MAX_PROBES 256

/*
 * Offsets (and small constants) a program needs to walk the Rust values at
 * its probe point, for one function instance of one binary: resolved by the
 * agent from the offsets database and the function's code, and written into
 * `probe_configs` before the probe is attached. Each library names the slots
 * of its configs in its own events.h (e.g. H2_CFG_*).
 */
#define PROBE_CONFIG_WORDS 64
#define MAX_PROBE_CONFIGS 1024
struct probe_config {
	__s32 v[PROBE_CONFIG_WORDS];
};

/* Facts about one attached executable, shared by all its probes. */
#define BINCTX_TASK_ID 1	/* task_id_tls_off is valid */
#define BINCTX_OTEL_CX 2	/* the otel_cx_* fields are valid (src/libs/otel-sdk/context.ts) */
#define BINCTX_THREAD_CTX 4	/* thread_ctx_off is valid (src/ctx/thread-ctx-slot.ts) */
#define MAX_BINARIES 256
struct binary_context {
	__s64 task_id_tls_off;	/* tokio's current task id: fs_base + this (x86-64 variant II TLS) */
	__u32 flags;		/* BINCTX_* */
	__u32 _pad;
	/* The OpenTelemetry API's thread-local current context (CURRENT_CONTEXT):
	 * fs_base + these = its lazy-storage state byte, its RefCell's borrow
	 * flag, and the active Context's Option<Arc<SynchronizedSpan>> (0: no
	 * span); that pointer + otel_trace_off / otel_span_off = the span's
	 * TraceId (u128) / SpanId (u64), native endian. */
	__s64 otel_state_off;
	__s64 otel_borrow_off;
	__s64 otel_span_ptr_off;
	__u16 otel_trace_off;
	__u16 otel_span_off;
	__u8  otel_alive;	/* the state byte's value when the storage is initialised and alive */
	__u8  _pad2[3];
	/* OTEP 4947: fs_base + this = the executable's otel_thread_ctx_v1 slot
	 * (a pointer to the thread's Thread-Local Context Record, or NULL). */
	__s64 thread_ctx_off;
	__u64 _reserved;
};

/*
 * Process life events (bpf/process.bpf.c): a traced process (a pid in the
 * `traced_pids` map the agent keeps) exec'd a program. Sent from the
 * sched_process_exec tracepoint into the same ring as the probes' events, so
 * the agent sees it exactly between the last event of the old image and the
 * first of the new one. The header's pid is the process (tgid after exec),
 * tid the thread that called exec (its tid before exec).
 */
#define EV_PROCESS_EXEC 0xf0
#define MAX_TRACED_PIDS 65536
/* Slot of probe_stats the process events count in (no probe id reaches it). */
#define PROCESS_EVENTS_STATS (MAX_PROBES - 1)
struct process_event {
	struct event_header hdr;
};

/*
 * A traced process made a thread (bpf/process.bpf.c, sched_process_fork,
 * which fires in the creating thread before the new one first runs): the
 * header's tid is the creating thread, `child_tid` the new thread, and
 * `parent_task_id` the tokio task the creating thread was polling then (0:
 * none). Sent only for processes in `thread_link_pids` (the agent files a
 * process there with its binary slot, so current_task_id can read tokio's
 * TLS). The agent lets the new thread inherit the creating thread's span
 * (src/spans/context.ts, `thread` keys), used only for events outside any
 * task, and only while that span is open.
 */
#define EV_THREAD_SPAWN 0xf1
/* Slot of probe_stats the thread events count in (no probe id reaches it). */
#define THREAD_EVENTS_STATS (MAX_PROBES - 2)
struct thread_spawn_event {
	struct event_header hdr;
	__u64 parent_task_id;
	__u32 child_tid;
	__u32 _pad;
};

#endif /* OTEL_RUST_AGENT_EVENTS_H */

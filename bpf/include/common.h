/* SPDX-License-Identifier: Apache-2.0 */
/* Maps and helpers shared by every probe module. Each module is its own BPF
 * object; the agent creates `events` and `probe_stats` once and hands the same
 * maps to every object (bpf_map__reuse_fd), so there is one ring buffer and
 * one counter table for the whole agent. */
#ifndef OTEL_RUST_AGENT_COMMON_H
#define OTEL_RUST_AGENT_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Size is set by the agent before load (power of two, page multiple). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_PROBES);
	__type(key, __u32);
	__type(value, struct probe_stats);
} probe_stats SEC(".maps");

/* Probe configurations (events.h, struct probe_config), written by the agent
 * before attach; index 0 is never used. Shared by every object like the two
 * maps above. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PROBE_CONFIGS);
	__type(key, __u32);
	__type(value, struct probe_config);
} probe_configs SEC(".maps");

/* Per-binary facts (events.h, struct binary_context), by binary slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BINARIES);
	__type(key, __u32);
	__type(value, struct binary_context);
} binary_contexts SEC(".maps");

static __always_inline struct probe_stats *stats_for(__u16 probe_id)
{
	__u32 key = probe_id;
	return bpf_map_lookup_elem(&probe_stats, &key);
}

/* Every program starts the same way: read its cookie and count the hit. */
static __always_inline struct probe_stats *count_hit(struct pt_regs *ctx, __u64 *cookie)
{
	*cookie = bpf_get_attach_cookie(ctx);
	struct probe_stats *st = stats_for(COOKIE_PROBE_ID(*cookie));
	if (st)
		__sync_fetch_and_add(&st->hits, 1);
	return st;
}

/* A value that failed its check: counted, never used. */
static __always_inline void count_bad_layout(struct probe_stats *st)
{
	if (st)
		__sync_fetch_and_add(&st->bad_layout, 1);
}

static __always_inline void fill_header(struct event_header *h, __u16 kind, __u64 cookie)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->probe_id = COOKIE_PROBE_ID(cookie);
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->cpu = (__u16)bpf_get_smp_processor_id();
	h->instance = COOKIE_INSTANCE(cookie);
	h->ts_ns = bpf_ktime_get_ns();
}

/* Events are submitted without a wakeup: the agent drains the ring on a timer.
 * A wakeup per event costs the traced thread an IPI (about 20 µs here). */
static __always_inline void submit(struct probe_stats *st, void *data, __u64 size)
{
	if (bpf_ringbuf_output(&events, data, size, BPF_RB_NO_WAKEUP) == 0) {
		if (st)
			__sync_fetch_and_add(&st->events, 1);
	} else if (st) {
		__sync_fetch_and_add(&st->drops, 1);
	}
}

/* A user-space address that can point at heap data: above the first 64 KiB
 * (never mapped) and below the x86-64 canonical user limit. */
static __always_inline int user_ptr_ok(__u64 p)
{
	return p >= 0x10000 && p < 0x800000000000ULL;
}

/* The configuration of this probe site, or NULL (none, or never written). */
static __always_inline const struct probe_config *config_of(__u64 cookie)
{
	__u32 idx = COOKIE_CONFIG(cookie);
	if (idx == 0)
		return 0;
	return bpf_map_lookup_elem(&probe_configs, &idx);
}

/* Slot i of a config, as an offset; the mask keeps the verifier sure of the bound. */
#define CFG(cfg, i) ((cfg)->v[(i) & (PROBE_CONFIG_WORDS - 1)])

/*
 * tokio's current task id on this thread (0: none, or unknown for this
 * binary). tokio keeps it in its thread-local runtime CONTEXT; the agent
 * locates that field from the binary's TLS symbol, its PT_TLS segment and the
 * offsets database (checked against tokio's own code), and stores the offset
 * from the thread pointer. On x86-64 the thread pointer is the FS base, which
 * the kernel keeps in the task (user space never moves it after clone).
 * A read of the TLS block cannot fault the target: it is bpf_probe_read_user.
 */
static __always_inline __u64 current_task_id(__u64 cookie)
{
	__u32 slot = COOKIE_BINARY(cookie);
	const struct binary_context *b = bpf_map_lookup_elem(&binary_contexts, &slot);
	if (!b || !(b->flags & BINCTX_TASK_ID))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 fs = BPF_CORE_READ(t, thread.fsbase);
	if (!user_ptr_ok(fs))
		return 0;
	__u64 id = 0;
	if (bpf_probe_read_user(&id, sizeof(id), (const void *)(fs + b->task_id_tls_off)))
		return 0;
	return id;
}

/* A user-space word, or 0 when it cannot be read. */
static __always_inline __u64 read_user_u64(__u64 addr)
{
	__u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (const void *)addr))
		return 0;
	return v;
}

/* A Vec<u8>/BytesMut read as raw words, with the word indexes the agent chose
 * for this binary. The check (pointer-shaped ptr, len <= cap, sane sizes)
 * catches a wrong layout before any of its values are used: a bad value is
 * counted, never dereferenced blindly. */
struct byte_buf {
	__u64 ptr;
	__u64 len;
	__u64 cap;
};

static __always_inline int read_byte_buf(const void *addr, __u32 nwords, __u64 cookie, struct byte_buf *out)
{
	__u64 w[4] = {};
	/* Read exactly the struct (3 words for Vec<u8>, 4 for BytesMut): the
	 * word after it may sit on an unmapped page. */
	if (bpf_probe_read_user(w, nwords == 4 ? 32 : 24, addr))
		return -1;
	__u32 pi = COOKIE_PTR_IDX(cookie), li = COOKIE_LEN_IDX(cookie), ci = COOKIE_CAP_IDX(cookie);
	if (pi == li || pi == ci || li == ci || pi >= nwords || li >= nwords || ci >= nwords)
		return -1;
	out->ptr = w[pi & 3];
	out->len = w[li & 3];
	out->cap = w[ci & 3];
	if (out->len > out->cap || out->cap > (1ULL << 32))
		return -1;
	if (out->cap != 0 && !user_ptr_ok(out->ptr))
		return -1;
	return 0;
}

#endif

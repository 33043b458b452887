// SPDX-License-Identifier: Apache-2.0
/*
 * Process life events the agent needs exactly, not by polling /proc: a
 * traced process that exec's keeps its pid and start time, so nothing in
 * /proc says "new image" (when it exec's the same file, not even the
 * executable changes). The tracepoint runs on every exec on the host; it
 * costs one hash lookup unless the pid is one the agent traces.
 */
#include "common.h"

/* Pids (tgids) the agent traces; the agent adds and removes them (src/agent). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACED_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} traced_pids SEC(".maps");

SEC("raw_tp/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (!bpf_map_lookup_elem(&traced_pids, &pid))
		return 0;
	struct probe_stats *st = stats_for(PROCESS_EVENTS_STATS);
	if (st)
		__sync_fetch_and_add(&st->hits, 1);
	struct process_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	fill_header(&e->hdr, EV_PROCESS_EXEC, PROCESS_EVENTS_STATS);
	e->hdr.tid = (__u32)ctx->args[1]; /* old_pid: the thread that called exec */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* drained on a timer, like every event */
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

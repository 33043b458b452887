// SPDX-License-Identifier: Apache-2.0
/*
 * Process life events the agent needs exactly, not by polling /proc: a
 * traced process that exec's keeps its pid and start time, so nothing in
 * /proc says "new image" (when it exec's the same file, not even the
 * executable changes). The tracepoint runs on every exec on the host; it
 * costs one hash lookup unless the pid is one the agent traces.
 */
#include "common.h"
#include "../src/propagation/context.h"

/* Pids (tgids) the agent traces; the agent adds and removes them (src/agent). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACED_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} traced_pids SEC(".maps");

/* Processes whose new threads are reported (EV_THREAD_SPAWN): tgid -> binary
 * slot (indexes binary_contexts, for tokio's current task id). The agent
 * files a traced process here once it knows its binary, and takes it out
 * when the process leaves its table or the binary is dropped; an exec takes
 * it out here at once (the new image's TLS is another's). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACED_PIDS);
	__type(key, __u32);
	__type(value, __u32);
} thread_link_pids SEC(".maps");

SEC("raw_tp/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (!bpf_map_lookup_elem(&traced_pids, &pid))
		return 0;
	bpf_map_delete_elem(&thread_link_pids, &pid);
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

/*
 * A thread was made (clone with CLONE_THREAD: pthread_create, hence
 * std::thread::spawn, tokio's blocking pool). The tracepoint fires in the
 * creating thread (current) before the new thread is woken, so the event is
 * in the ring before any event of the new thread. New processes (fork) are
 * not reported: their child_tgid differs. Runs on every clone of the host;
 * one hash lookup unless the process is in thread_link_pids.
 */
SEC("raw_tp/sched_process_fork")
int process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;
	const __u32 *slot = bpf_map_lookup_elem(&thread_link_pids, &pid);
	if (!slot)
		return 0;
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	__u32 child_tid = BPF_CORE_READ(child, pid);
	if (child_tgid != pid || child_tid == 0)
		return 0;
	struct probe_stats *st = stats_for(THREAD_EVENTS_STATS);
	if (st)
		__sync_fetch_and_add(&st->hits, 1);
	/* The slot as a cookie: current_task_id reads the binary's TLS offset by it. */
	__u64 cookie = ((__u64)(*slot & 0xff)) << 56 | THREAD_EVENTS_STATS;
	struct thread_spawn_event e = {};
	fill_header(&e.hdr, EV_THREAD_SPAWN, cookie);
	/* Sent also when the creator runs no task: the agent then drops any stale
	 * filing of this tid (thread ids are reused). */
	e.parent_task_id = current_task_id(cookie);
	e.child_tid = child_tid;
	/* The kernel-side lineage for outgoing context (context.h). */
	prop_link_thread(pid, e.parent_task_id, (__u32)pid_tgid, child_tid, BPF_CORE_READ(child, start_time));
	submit(st, &e, sizeof(e));
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * tokio spawn probes: one event per spawned task, saying which task spawned
 * it, so the agent lets a child task inherit its parent's active span
 * (src/spans/context.ts, lineage keys).
 *
 * Probe points (probes.ts), function entries (a push: emulated):
 *   tokio::runtime::task::list::OwnedTasks<S>::bind_inner(&self, task, notified)
 *       every tokio::spawn / spawn_local on the multi-thread and the
 *       current-thread scheduler (G over the scheduler only: instantiated
 *       inside tokio, one instance per scheduler); rsi = the new task's Header
 *   tokio::runtime::blocking::pool::Spawner::spawn_task(&self, task, rt)
 *       every spawn_blocking; rsi = the new blocking task's Header
 * The spawning thread is the one running: its current task (TLS, common.h)
 * is the parent.
 *
 * Child id: Header is repr(C) with its vtable pointer at +16; the Vtable's
 * `id_offset` says where the task id sits in the task cell. Where that field
 * is inside the (repr(Rust)) Vtable is read from tokio's own code by the
 * agent (bind_inner loads exactly this chain for its shard id) and passed in
 * the probe config. Every read is bpf_probe_read_user and checked.
 */
#include "common.h"
#include "events.h"
#include "../../propagation/context.h"

SEC("uprobe")
int tokio_spawn(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 header = PT_REGS_PARM2(ctx);
	if (!user_ptr_ok(header) || (header & 7)) {
		count_bad_layout(st);
		return 0;
	}
	__u64 vtable = read_user_u64(header + TOKIO_HEADER_VTABLE);
	if (!vtable || (vtable & 7)) {
		count_bad_layout(st);
		return 0;
	}
	__s32 f = CFG(cfg, TOKIO_CFG_VTABLE_ID_OFFSET);
	if (f < 0 || f > 256 || (f & 7)) {
		count_bad_layout(st);
		return 0;
	}
	__u64 id_off = read_user_u64(vtable + (__u64)f);
	if (id_off < TOKIO_HEADER_VTABLE + 8 || id_off > TOKIO_ID_OFFSET_MAX || (id_off & 7)) {
		count_bad_layout(st);
		return 0;
	}
	__u64 child = read_user_u64(header + id_off);
	if (child == 0) {
		count_bad_layout(st);
		return 0;
	}
	/* Spawned outside any task (block_on's future, a plain thread): there
	 * is nothing to inherit, so nothing is sent. */
	__u64 parent = current_task_id(cookie);
	if (parent == 0)
		return 0;
	struct tokio_spawn_event e = {};
	fill_header(&e.hdr, EV_TOKIO_SPAWN, cookie);
	/* The kernel-side lineage for outgoing context (context.h). */
	prop_link_task(e.hdr.pid, parent, child);
	e.parent_task_id = parent;
	e.child_task_id = child;
	submit(st, &e, sizeof(e));
	return 0;
}

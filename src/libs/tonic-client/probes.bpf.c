// SPDX-License-Identifier: Apache-2.0
/*
 * tonic client probe: a gRPC call as the application makes it, in its own
 * task (so its CLIENT span can get the server span of that task as parent).
 *
 *   tonic::client::grpc::GrpcConfig::prepare_request   entry
 *
 * Non-generic (tonic 0.14), called once per call by Grpc::streaming (unary,
 * client, server and bidi streaming all go through it) right before the
 * request is handed to the transport (tonic's Channel queues it for hyper's
 * dispatch task, where h2-client sees it on the wire).
 * x86-64 (checked by disassembly on tonic 0.14.9): rdi = sret, rsi =
 * &GrpcConfig, rdx = &tonic::Request<Body>, rcx = &PathAndQuery (the call's
 * path, "/package.Service/Method").
 */
#include "common.h"
#include "events.h"
#include "../../propagation/context.h"

SEC("uprobe")
int tonic_prepare_request(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 pq = PT_REGS_PARM4(ctx) + CFG(cfg, TC_CFG_PATH_DATA);
	__u64 ptr = read_user_u64(pq + CFG(cfg, TC_CFG_BYTES_PTR));
	__u64 len = read_user_u64(pq + CFG(cfg, TC_CFG_BYTES_LEN));
	if (!user_ptr_ok(ptr) || len == 0 || len > 0xffff) {
		count_bad_layout(st);
		return 0;
	}
	struct tonic_call_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	fill_header(&e->hdr, EV_TONIC_CLIENT_CALL, cookie);
	e->path_len = (__u16)len;
	e->_pad[0] = e->_pad[1] = e->_pad[2] = 0;
	int r = len >= TONIC_PATH_CAP ? bpf_probe_read_user(e->path, TONIC_PATH_CAP, (const void *)ptr)
				       : bpf_probe_read_user(e->path, (__u32)len & (TONIC_PATH_CAP - 1), (const void *)ptr);
	if (r || e->path[0] != '/') {
		count_bad_layout(st);
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	e->task_id = current_task_id(cookie);
	/* File the call for outgoing context (src/propagation/context.h): h2-client's
	 * send_headers takes it by :path, which is this path (tonic sends no query). */
	if (len < TONIC_PATH_CAP) {
		__u64 h = PROP_FNV_INIT;
		for (__u32 i = 0; i < TONIC_PATH_CAP; i++) {
			if (i >= len)
				break;
			h = (h ^ e->path[i]) * PROP_FNV_PRIME;
		}
		prop_file_call(e->hdr.pid, e->task_id, (__u32)len, h, e->hdr.ts_ns);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

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
		prop_file_call(e->hdr.pid, e->task_id, e->hdr.tid, (__u32)len, h, e->hdr.ts_ns);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

/*
 * tonic::status::Status::from_error entry (non-generic; tonic 0.14's client
 * maps every transport error of a call through it, in the caller's task:
 * Grpc::streaming's `map_err(Status::from_error_generic)`; a call that got
 * an answer never comes here). rdi, rsi = the Box<dyn Error> (data, vtable).
 *
 * Only one case is told, exactly: the error is tonic's transport::Error
 * (vtable word 0 = its drop glue) whose boxed source is tonic's ConnectError
 * (found among its words by the same vtable test), or a ConnectError itself.
 * from_error then returns UNAVAILABLE: try_from_error's downcasts (Status,
 * h2::Error) fail on it, and find_status_in_source_chain looks at the
 * transport error (not a Status, TimeoutExpired, ConnectError or
 * hyper::Error) and then at its source, the ConnectError: unavailable.
 * Everything else is code -1 (not told: no span from it).
 */
static __always_inline int drop_is(const struct probe_config *cfg, __u64 vt, __u64 bias, int n_slot, int first)
{
	__u64 drop = read_user_u64(vt);
	if (!drop)
		return 0;
	__s32 n = CFG(cfg, n_slot);
	for (int i = 0; i < TC_ERR_MAX; i++) {
		if (i >= n)
			break;
		if (drop - bias == (__u64)(__u32)CFG(cfg, first + i))
			return 1;
	}
	return 0;
}

SEC("uprobe")
int tonic_status_from_error(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 bias = PT_REGS_IP(ctx) - (__u64)(__u32)CFG(cfg, TC_ERR_FN);
	__u64 data = PT_REGS_PARM1(ctx), vt = PT_REGS_PARM2(ctx);
	__s32 code = -1;
	if (user_ptr_ok(data) && user_ptr_ok(vt)) {
		if (drop_is(cfg, vt, bias, TC_ERR_N_CONNECT, TC_ERR_CONNECT)) {
			code = 14;
		} else if (drop_is(cfg, vt, bias, TC_ERR_N_TRANSPORT, TC_ERR_TRANSPORT)) {
			__u64 w[TC_ERR_WORDS] = {};
			if (bpf_probe_read_user(w, sizeof(w), (const void *)data) == 0) {
				for (int i = 0; i + 1 < TC_ERR_WORDS; i++) {
					if (!user_ptr_ok(w[i]) || !user_ptr_ok(w[i + 1]) || (w[i + 1] & 7))
						continue;
					if (drop_is(cfg, w[i + 1], bias, TC_ERR_N_CONNECT, TC_ERR_CONNECT)) {
						code = 14;
						break;
					}
				}
			}
		}
	}
	struct tonic_error_event e = {};
	fill_header(&e.hdr, EV_TONIC_CLIENT_ERROR, cookie);
	e.task_id = current_task_id(cookie);
	e.code = code;
	submit(st, &e, sizeof(e));
	return 0;
}

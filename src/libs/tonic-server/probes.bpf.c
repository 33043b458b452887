// SPDX-License-Identifier: Apache-2.0
/*
 * tonic server probe: the status of a gRPC call, from the trailers tonic
 * sends (grpc-status, grpc-message).
 *
 *   h2::proto::streams::streams::StreamRef<B>::send_trailers   entry
 *
 * tonic's response body ends every call that streamed a message with a
 * trailers frame (EncodeBody, then hyper's body pipe calls h2's
 * send_trailers in the stream's task); a call that fails before any message
 * sends its status in the response head instead (trailers-only), which
 * h2-server's send_response probe reads. Generic over h2's body buffer,
 * instantiated in the application crate like send_response.
 * x86-64: rdi = &mut StreamRef, rsi = &HeaderMap (the trailers).
 */
#include "common.h"
#include "http_headermap.h"
#include "events.h"

SEC("uprobe")
int grpc_send_trailers(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 self = PT_REGS_PARM1(ctx), map = PT_REGS_PARM2(ctx);
	struct grpc_trailers_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	__builtin_memset(e, 0, offsetof(struct grpc_trailers_event, grpc_message));
	fill_header(&e->hdr, EV_TONIC_SERVER_TRAILERS, cookie);
	__u64 arc = read_user_u64(self + CFG(cfg, GT_CFG_SELF_ARC));
	e->conn = arc + CFG(cfg, GT_CFG_ARC_INNER);
	bpf_probe_read_user(&e->stream_id, 4, (const void *)(self + CFG(cfg, GT_CFG_SELF_STREAM_ID)));
	e->grpc_status = -1;
	int bad = !user_ptr_ok(arc) || e->stream_id == 0;
	if (!bad && hm_grpc_status(cfg, GT_CFG_HM, map, &e->grpc_status, e->grpc_message, GRPC_MESSAGE_CAP, &e->grpc_message_len))
		bad = 1;
	if (bad) {
		count_bad_layout(st);
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	e->task_id = current_task_id(cookie);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * h2 server probes (h2 0.3 and 0.4: hyper 0.14 and 1.x, axum, tonic).
 *
 * Probe points (declared in probes.ts), all function entries (a push: the
 * kernel emulates it):
 *   h2::proto::streams::recv::Recv::recv_headers         every received HEADERS
 *       that opens a stream: the request's header block, already decoded by
 *       HPACK (so a connection opened before the agent attached needs no
 *       dynamic-table state). Non-generic.
 *   h2::proto::streams::streams::StreamRef<B>::send_response   the response
 *       head, in the stream's task. Generic over the body buffer; instantiated
 *       in the application crate, one instance per body type.
 *   h2::proto::streams::recv::Recv::recv_reset           RST_STREAM for a
 *       stream (rare: no cost in normal traffic). Non-generic.
 *
 * Arguments (x86-64, checked by disassembly on h2 0.3.27 and 0.4.20):
 *   recv_headers(rdi = sret, rsi = &mut Recv, rdx = &frame::Headers,
 *                rcx = &mut store::Ptr, r8 = &mut Counts)
 *   send_response(rdi = &mut StreamRef, rsi = &Response<()>, dl = end_of_stream)
 *   recv_reset(rdi = sret, rsi = &mut Recv, edx = stream id, ecx = error code,
 *              r8 = &mut Stream, r9 = &mut Counts)
 *
 * A request and its response are paired by (connection, stream id). The
 * connection is the address of h2's per-connection stream state (Inner, in
 * an Arc<Mutex<Inner>>): recv_headers sees it three ways (the Counts and
 * Recv it is given, and the Store its Ptr points at), send_response through
 * the Arc its StreamRef holds. Every offset comes from the probe config; the
 * ways that must agree are checked on every hit, so a wrong offset is a
 * counted bad layout, never a wrong pairing.
 */
#include "common.h"
#include "http_headermap.h"
#include "events.h"

#define END_STREAM 0x1

static __always_inline __u16 copy_bytes(void *dst, __u32 cap, const struct probe_config *cfg, __u32 hm, __u64 bytes_addr, int *bad)
{
	struct hm_bytes b;
	int r = hm_read_bytes(cfg, hm, bytes_addr, &b);
	if (r < 0) {
		*bad = 1;
		return 0;
	}
	if (r > 0)
		return 0; /* None */
	return hm_copy(dst, cap, &b);
}

static __always_inline __u8 method_index(const struct probe_config *cfg, __s32 tag)
{
#pragma unroll
	for (int i = 0; i <= H2_CFG_M_QUERY - H2_CFG_M_GET; i++)
		if (CFG(cfg, H2_CFG_M_GET + i) == tag)
			return (__u8)(H2_METHOD_GET + i);
	if (tag == CFG(cfg, H2_CFG_M_INLINE) || tag == CFG(cfg, H2_CFG_M_ALLOC))
		return H2_METHOD_EXTENSION;
	return H2_METHOD_UNKNOWN;
}

/* The request headers spans use, from the decoded header map. */
static __always_inline int read_request_headers(struct h2_request_event *e, const struct probe_config *cfg, __u64 map)
{
	__u64 entries;
	__u32 n;
	if (hm_entries(cfg, H2_CFG_HM, map, &entries, &n))
		return -1;
	e->n_headers = n;
	e->request_id = entries;
	__s32 ua = CFG(cfg, H2_CFG_STD_UA), ct = CFG(cfg, H2_CFG_STD_CTYPE), host = CFG(cfg, H2_CFG_STD_HOST);
	for (__u32 i = 0; i < HM_MAX_ENTRIES; i++) {
		if (i >= n)
			break;
		struct hm_entry h = {};
		if (hm_entry_at(cfg, H2_CFG_HM, entries, i, &h))
			return -1;
		if (h.std >= 0) {
			if (h.std == ua && !e->ua_len)
				e->ua_len = hm_copy(e->ua, H2_UA_CAP, &h.value);
			else if (h.std == ct && !e->ctype_len)
				e->ctype_len = hm_copy(e->ctype, H2_CTYPE_CAP, &h.value);
			else if (h.std == host && !e->host_len)
				e->host_len = hm_copy(e->host, H2_HOST_CAP, &h.value);
		} else if (h.name.len == 11 && !e->traceparent_len && hm_name_is(&h.name, "traceparent", 11)) {
			e->traceparent_len = hm_copy(e->traceparent, H2_TRACEPARENT_CAP, &h.value);
		} else if (h.name.len == 10 && !e->tracestate_len && hm_name_is(&h.name, "tracestate", 10)) {
			e->tracestate_len = hm_copy(e->tracestate, H2_TRACESTATE_CAP, &h.value);
		}
	}
	return 0;
}

SEC("uprobe")
int h2_recv_headers(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 recv = PT_REGS_PARM2(ctx), frame = PT_REGS_PARM3(ctx), ptr = PT_REGS_PARM4(ctx), counts = PT_REGS_PARM5(ctx);

	/* A HEADERS frame that opens a stream: a request (server side) when it
	 * has a method and no :status; a client's response heads come here too
	 * and are skipped. */
	__u64 pseudo = frame + CFG(cfg, H2_CFG_PSEUDO);
	__u16 status = 0;
	__u8 mtag = 0;
	if (bpf_probe_read_user(&status, 2, (const void *)(pseudo + CFG(cfg, H2_CFG_P_STATUS))) ||
	    bpf_probe_read_user(&mtag, 1, (const void *)(pseudo + CFG(cfg, H2_CFG_P_METHOD) + CFG(cfg, H2_CFG_M_TAG)))) {
		count_bad_layout(st);
		return 0;
	}
	if (status != 0 || mtag == (__u8)CFG(cfg, H2_CFG_M_NONE))
		return 0;

	/* The connection, three ways that must agree; the stream id, two ways. */
	__u64 conn = counts - CFG(cfg, H2_CFG_INNER_COUNTS);
	__u64 store = read_user_u64(ptr + CFG(cfg, H2_CFG_PTR_STORE));
	__u32 sid = 0, key_sid = 0;
	bpf_probe_read_user(&sid, 4, (const void *)(frame + CFG(cfg, H2_CFG_FRAME_STREAM_ID)));
	bpf_probe_read_user(&key_sid, 4, (const void *)(ptr + CFG(cfg, H2_CFG_PTR_STREAM_ID)));
	if (!user_ptr_ok(conn) || store - CFG(cfg, H2_CFG_INNER_STORE) != conn || recv - CFG(cfg, H2_CFG_INNER_RECV) != conn ||
	    sid == 0 || sid != key_sid || (sid & 1) == 0) {
		count_bad_layout(st);
		return 0;
	}

	struct h2_request_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	__builtin_memset(e, 0, offsetof(struct h2_request_event, path));
	fill_header(&e->hdr, EV_H2_SERVER_REQUEST, cookie);
	e->conn = conn;
	e->task_id = current_task_id(cookie);
	e->stream_id = sid;
	__u8 flags = 0;
	bpf_probe_read_user(&flags, 1, (const void *)(frame + CFG(cfg, H2_CFG_FRAME_FLAGS)));
	e->end_stream = flags & END_STREAM;

	__u64 method = pseudo + CFG(cfg, H2_CFG_P_METHOD);
	e->method = method_index(cfg, mtag);
	if (e->method == H2_METHOD_EXTENSION) {
		if (mtag == (__u8)CFG(cfg, H2_CFG_M_INLINE)) {
			__u8 len = 0;
			bpf_probe_read_user(&len, 1, (const void *)(method + CFG(cfg, H2_CFG_M_INLINE_LEN)));
			struct hm_bytes b = { .ptr = method + CFG(cfg, H2_CFG_M_INLINE_BYTES), .len = len > 15 ? 15 : len };
			e->method_len = hm_copy(e->method_name, H2_METHOD_CAP, &b);
		} else {
			struct hm_bytes b = { .ptr = read_user_u64(method + CFG(cfg, H2_CFG_M_ALLOC_PTR)),
					      .len = read_user_u64(method + CFG(cfg, H2_CFG_M_ALLOC_LEN)) };
			if (user_ptr_ok(b.ptr))
				e->method_len = hm_copy(e->method_name, H2_METHOD_CAP, &b);
		}
	}

	int bad = 0;
	e->path_len = copy_bytes(e->path, H2_PATH_CAP, cfg, H2_CFG_HM, pseudo + CFG(cfg, H2_CFG_P_PATH), &bad);
	e->authority_len = copy_bytes(e->authority, H2_AUTHORITY_CAP, cfg, H2_CFG_HM, pseudo + CFG(cfg, H2_CFG_P_AUTHORITY), &bad);
	e->scheme_len = copy_bytes(e->scheme, H2_SCHEME_CAP, cfg, H2_CFG_HM, pseudo + CFG(cfg, H2_CFG_P_SCHEME), &bad);
	if (bad || read_request_headers(e, cfg, frame + CFG(cfg, H2_CFG_FIELDS))) {
		count_bad_layout(st);
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

/* grpc-status and grpc-message of a header map (a trailers-only response). */
static __always_inline int read_grpc_status(struct h2_response_event *e, const struct probe_config *cfg, __u64 map)
{
	return hm_grpc_status(cfg, H2R_CFG_HM, map, &e->grpc_status, e->grpc_message, H2_GRPC_MESSAGE_CAP, &e->grpc_message_len);
}

SEC("uprobe")
int h2_send_response(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 self = PT_REGS_PARM1(ctx), response = PT_REGS_PARM2(ctx);
	__u8 eos = (__u8)PT_REGS_PARM3(ctx);

	struct h2_response_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	__builtin_memset(e, 0, offsetof(struct h2_response_event, grpc_message));
	fill_header(&e->hdr, EV_H2_SERVER_RESPONSE, cookie);
	__u64 arc = read_user_u64(self + CFG(cfg, H2R_CFG_SELF_ARC));
	e->conn = arc + CFG(cfg, H2R_CFG_ARC_INNER);
	bpf_probe_read_user(&e->stream_id, 4, (const void *)(self + CFG(cfg, H2R_CFG_SELF_STREAM_ID)));
	bpf_probe_read_user(&e->status, 2, (const void *)(response + CFG(cfg, H2R_CFG_STATUS)));
	e->end_stream = eos & 1;
	e->grpc_status = -1;
	if (!user_ptr_ok(arc) || e->stream_id == 0 || (e->stream_id & 1) == 0 || e->status < 100 || e->status > 999 ||
	    (e->end_stream && read_grpc_status(e, cfg, response + CFG(cfg, H2R_CFG_HEADERS)))) {
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

SEC("uprobe")
int h2_recv_reset(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 recv = PT_REGS_PARM2(ctx), counts = ctx->r9;
	struct h2_reset_event e = {};
	fill_header(&e.hdr, EV_H2_SERVER_RESET, cookie);
	e.conn = counts - CFG(cfg, H2R_CFG_INNER_COUNTS);
	e.stream_id = (__u32)PT_REGS_PARM3(ctx);
	e.error_code = (__u32)PT_REGS_PARM4(ctx);
	if (!user_ptr_ok(e.conn) || recv - CFG(cfg, H2R_CFG_INNER_RECV) != e.conn || e.stream_id == 0) {
		count_bad_layout(st);
		return 0;
	}
	submit(st, &e, sizeof(e));
	return 0;
}

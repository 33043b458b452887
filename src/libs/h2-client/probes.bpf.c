// SPDX-License-Identifier: Apache-2.0
/*
 * h2 client probes (h2 0.4: hyper 1.x clients, tonic's Channel, reqwest with
 * HTTP/2). One CLIENT span per stream this process opens.
 *
 * Probe points (declared in probes.ts), all function entries (a push: the
 * kernel emulates it):
 *   h2::proto::streams::send::Send::send_headers<B>   every HEADERS frame h2
 *       queues for sending: a client's request head (pseudo-headers and
 *       header map, before HPACK), a server's response heads (skipped at
 *       once: no method). Generic over the send buffer, instantiated in the
 *       application crate; every instance is probed.
 *   h2::proto::streams::recv::Recv::recv_headers      every received HEADERS
 *       frame that opens or answers a stream, decoded (h2-server probes the
 *       same function for requests; the breakpoint is shared, each program
 *       returns at once for the other side's frames). Non-generic.
 *   h2::proto::streams::recv::Recv::recv_trailers     trailers (gRPC's
 *       status). Non-generic; only streams that end with trailers reach it.
 *   h2::proto::streams::recv::Recv::recv_reset        RST_STREAM (rare; the
 *       breakpoint is shared with h2-server's probe). Non-generic.
 *
 * Arguments (x86-64, checked by disassembly on h2 0.4.20):
 *   send_headers(rdi = &mut Send, rsi = &frame::Headers, rdx = &mut Buffer,
 *                rcx = &mut store::Ptr, r8 = &mut Counts, r9 = &mut task)
 *   recv_headers(rdi = sret, rsi = &mut Recv, rdx = &frame::Headers,
 *                rcx = &mut store::Ptr, r8 = &mut Counts)
 *   recv_trailers(rdi = sret, rsi = &mut Recv, rdx = &frame::Headers,
 *                 rcx = &mut store::Ptr)
 *   recv_reset(rdi = sret, rsi = &mut Recv, edx = stream id, ecx = error code,
 *              r8 = &mut Stream, r9 = &mut Counts)
 *
 * A request and its response are paired by (connection, stream id), the
 * connection being the address of h2's per-connection state (streams::Inner),
 * computed two ways that must agree (from the Counts or Recv the function is
 * given, and from the Store its Ptr points at); the frame's stream id must be
 * the Ptr's. Offsets are h2-server's request config (H2_CFG_*).
 */
#include "common.h"
#include "http_headermap.h"
#include "../h2-server/events.h"
#include "events.h"
#include "../../propagation/context.h"

#define END_STREAM 0x1

static __always_inline int pseudo_bytes(void *dst, __u32 cap, const struct probe_config *cfg, __u64 addr, __u16 *len)
{
	struct hm_bytes b;
	int r = hm_read_bytes(cfg, H2_CFG_HM, addr, &b);
	if (r < 0)
		return -1;
	*len = r > 0 ? 0 : hm_copy(dst, cap, &b);
	return 0;
}

static __always_inline __u8 method_of(const struct probe_config *cfg, __s32 tag)
{
#pragma unroll
	for (int i = 0; i <= H2_CFG_M_QUERY - H2_CFG_M_GET; i++)
		if (CFG(cfg, H2_CFG_M_GET + i) == tag)
			return (__u8)(H2_METHOD_GET + i);
	if (tag == CFG(cfg, H2_CFG_M_INLINE) || tag == CFG(cfg, H2_CFG_M_ALLOC))
		return H2_METHOD_EXTENSION;
	return H2_METHOD_UNKNOWN;
}

/* The connection from the Ptr's store, checked against `via` (Counts or Recv); the frame's stream id, checked against the Ptr's key. */
static __always_inline int stream_of(const struct probe_config *cfg, __u64 frame, __u64 ptr, __u64 conn, __u32 *sid)
{
	__u64 store = read_user_u64(ptr + CFG(cfg, H2_CFG_PTR_STORE));
	__u32 key_sid = 0;
	*sid = 0;
	bpf_probe_read_user(sid, 4, (const void *)(frame + CFG(cfg, H2_CFG_FRAME_STREAM_ID)));
	bpf_probe_read_user(&key_sid, 4, (const void *)(ptr + CFG(cfg, H2_CFG_PTR_STREAM_ID)));
	if (!user_ptr_ok(conn) || store - CFG(cfg, H2_CFG_INNER_STORE) != conn || *sid == 0 || *sid != key_sid || (*sid & 1) == 0)
		return -1;
	return 0;
}

/*
 * Takes the caller's call waiting for this :path (tonic-client's
 * prepare_request or reqwest's execute_request filed it, in the caller's
 * task: src/propagation/context.h) and files the request for the socket
 * program under (pid, stream id): the HEADERS frame h2 is about to encode
 * gets a traceparent with the caller's trace id and this span's id.
 * Returns what was filed (PROP_H2_*), or H2C_PROP_NOT_PLAINTEXT for https.
 */
/* FNV-1a over the :path (ring memory, H2C_PATH_CAP bytes), one byte per bpf_loop step. */
struct path_hash {
	const __u8 *p;
	__u32 n;
	__u64 h;
};

static long path_hash_cb(__u64 i, struct path_hash *s)
{
	__u32 k = (__u32)i & (H2C_PATH_CAP - 1);
	if (k >= s->n)
		return 1;
	s->h = (s->h ^ s->p[k]) * PROP_FNV_PRIME;
	return 0;
}

static __always_inline __u8 file_for_socket(struct h2_client_request_event *e, __u64 conn, __u32 sid, __u8 own_tp, __u8 own_ts)
{
	__u32 pid = e->hdr.pid;
	__u64 now = e->hdr.ts_ns;
	__u32 n = e->path_len;
	__u8 state = PROP_H2_NO_CTX;
	struct prop_h2_out o = { .conn = conn, .ts_ns = now };
	if (n > 0 && n < H2C_PATH_CAP && e->path[0] == '/') {
		struct path_hash ph = { .p = e->path, .n = n, .h = PROP_FNV_INIT };
		bpf_loop(n, path_hash_cb, &ph, 0);
		__u64 h = ph.h;
		__u64 owner = prop_take_call(pid, n, h, now);
		if (owner == PROP_AMBIGUOUS) {
			state = PROP_H2_AMBIGUOUS;
		} else if (owner != 0 && owner != PROP_NO_CTX) {
			struct prop_span_key sk = { .pid = pid, .span = owner };
			struct prop_ids *ctx = bpf_map_lookup_elem(&prop_span_ctx, &sk);
			if (ctx) {
				__builtin_memcpy(&o.ctx, ctx, sizeof(o.ctx));
				state = PROP_H2_OK;
			}
		}
	}
	if (own_tp)
		state = PROP_H2_PRESENT;
	/* https: ciphertext on the socket, nothing to file. */
	if (e->scheme_len == 5 && e->scheme[4] == 's')
		return H2C_PROP_NOT_PLAINTEXT;
	__builtin_memcpy(o.span_id, e->span_id, 8);
	o.state = state;
	o.own_ts = own_ts;
	struct prop_h2_key k = { .pid = pid, .stream_id = sid };
	struct prop_h2_out *old = bpf_map_lookup_elem(&prop_h2_out, &k);
	if (old && old->conn != conn && now - old->ts_ns < PROP_H2_MAX_NS) {
		/* Another connection's request for this stream id is still waiting: which frame is whose cannot be told. */
		old->state = PROP_H2_AMBIGUOUS;
		return PROP_H2_AMBIGUOUS;
	}
	bpf_map_update_elem(&prop_h2_out, &k, &o, BPF_ANY);
	return state;
}

SEC("uprobe")
int h2c_send_headers(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 frame = PT_REGS_PARM2(ctx), ptr = PT_REGS_PARM4(ctx), counts = PT_REGS_PARM5(ctx);
	__u64 pseudo = frame + CFG(cfg, H2_CFG_PSEUDO);
	__u16 status = 0;
	__u8 mtag = 0;
	if (bpf_probe_read_user(&status, 2, (const void *)(pseudo + CFG(cfg, H2_CFG_P_STATUS))) ||
	    bpf_probe_read_user(&mtag, 1, (const void *)(pseudo + CFG(cfg, H2_CFG_P_METHOD) + CFG(cfg, H2_CFG_M_TAG)))) {
		count_bad_layout(st);
		return 0;
	}
	/* A server's response head (a :status, no method): not ours. */
	if (status != 0 || mtag == (__u8)CFG(cfg, H2_CFG_M_NONE))
		return 0;
	__u64 conn = counts - CFG(cfg, H2_CFG_INNER_COUNTS);
	__u32 sid;
	if (stream_of(cfg, frame, ptr, conn, &sid)) {
		count_bad_layout(st);
		return 0;
	}
	struct h2_client_request_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	__builtin_memset(e, 0, offsetof(struct h2_client_request_event, path));
	fill_header(&e->hdr, EV_H2_CLIENT_REQUEST, cookie);
	e->conn = conn;
	e->stream_id = sid;
	__u8 flags = 0;
	bpf_probe_read_user(&flags, 1, (const void *)(frame + CFG(cfg, H2_CFG_FRAME_FLAGS)));
	e->end_stream = flags & END_STREAM;
	__u64 method = pseudo + CFG(cfg, H2_CFG_P_METHOD);
	e->method = method_of(cfg, mtag);
	if (e->method == H2_METHOD_EXTENSION) {
		if (mtag == (__u8)CFG(cfg, H2_CFG_M_INLINE)) {
			__u8 len = 0;
			bpf_probe_read_user(&len, 1, (const void *)(method + CFG(cfg, H2_CFG_M_INLINE_LEN)));
			struct hm_bytes b = { .ptr = method + CFG(cfg, H2_CFG_M_INLINE_BYTES), .len = len > 15 ? 15 : len };
			e->method_len = hm_copy(e->method_name, H2C_METHOD_CAP, &b);
		} else {
			struct hm_bytes b = { .ptr = read_user_u64(method + CFG(cfg, H2_CFG_M_ALLOC_PTR)),
					      .len = read_user_u64(method + CFG(cfg, H2_CFG_M_ALLOC_LEN)) };
			if (user_ptr_ok(b.ptr))
				e->method_len = hm_copy(e->method_name, H2C_METHOD_CAP, &b);
		}
	}
	int bad = pseudo_bytes(e->path, H2C_PATH_CAP, cfg, pseudo + CFG(cfg, H2_CFG_P_PATH), &e->path_len) ||
		  pseudo_bytes(e->authority, H2C_AUTHORITY_CAP, cfg, pseudo + CFG(cfg, H2_CFG_P_AUTHORITY), &e->authority_len) ||
		  pseudo_bytes(e->scheme, H2C_SCHEME_CAP, cfg, pseudo + CFG(cfg, H2_CFG_P_SCHEME), &e->scheme_len);
	__u64 entries = 0;
	__u32 n = 0;
	if (!bad && hm_entries(cfg, H2_CFG_HM, frame + CFG(cfg, H2_CFG_FIELDS), &entries, &n))
		bad = 1;
	e->request_id = entries;
	__s32 ct = CFG(cfg, H2_CFG_STD_CTYPE);
	__u8 own_tp = 0, own_ts = 0;
	for (__u32 i = 0; i < HM_MAX_ENTRIES && !bad; i++) {
		if (i >= n)
			break;
		struct hm_entry h = {};
		if (hm_entry_at(cfg, H2_CFG_HM, entries, i, &h)) {
			bad = 1;
			break;
		}
		if (h.std == ct)
			e->ctype_len = hm_copy(e->ctype, H2C_CTYPE_CAP, &h.value);
		else if (h.std < 0 && h.name.len == 11 && hm_name_is(&h.name, "traceparent", 11))
			own_tp = 1;
		else if (h.std < 0 && h.name.len == 10 && hm_name_is(&h.name, "tracestate", 10))
			own_ts = 1;
	}
	/* A map with more entries than were looked at may hide a traceparent. */
	if (n > HM_MAX_ENTRIES)
		own_tp = 1;
	if (bad) {
		count_bad_layout(st);
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	e->task_id = current_task_id(cookie);
	prop_new_span_id(e->span_id);
	e->prop = file_for_socket(e, conn, sid, own_tp, own_ts);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

/* grpc-status / grpc-message of a received frame's header map. */
static __always_inline int grpc_fields(struct h2_client_response_event *e, const struct probe_config *cfg, __u64 map)
{
	return hm_grpc_status(cfg, H2_CFG_HM, map, &e->grpc_status, e->grpc_message, H2C_GRPC_MESSAGE_CAP, &e->grpc_message_len);
}

static __always_inline int received(struct pt_regs *ctx, __u16 kind)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 recv = PT_REGS_PARM2(ctx), frame = PT_REGS_PARM3(ctx), ptr = PT_REGS_PARM4(ctx);
	__u64 pseudo = frame + CFG(cfg, H2_CFG_PSEUDO);
	__u16 status = 0;
	if (kind == EV_H2_CLIENT_RESPONSE) {
		if (bpf_probe_read_user(&status, 2, (const void *)(pseudo + CFG(cfg, H2_CFG_P_STATUS)))) {
			count_bad_layout(st);
			return 0;
		}
		/* A request (server side, h2-server's) or a 1xx head: not a response head of ours. */
		if (status < 200 || status > 999)
			return 0;
	}
	__u64 conn = recv - CFG(cfg, H2_CFG_INNER_RECV);
	__u32 sid;
	if (stream_of(cfg, frame, ptr, conn, &sid)) {
		count_bad_layout(st);
		return 0;
	}
	struct h2_client_response_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	__builtin_memset(e, 0, offsetof(struct h2_client_response_event, grpc_message));
	fill_header(&e->hdr, kind, cookie);
	e->conn = conn;
	e->stream_id = sid;
	e->status = status;
	e->grpc_status = -1;
	__u8 flags = 0;
	bpf_probe_read_user(&flags, 1, (const void *)(frame + CFG(cfg, H2_CFG_FRAME_FLAGS)));
	e->end_stream = kind == EV_H2_CLIENT_TRAILERS ? 1 : flags & END_STREAM;
	/* Response heads carry a status only when they end the stream (trailers-only). */
	if ((kind == EV_H2_CLIENT_TRAILERS || e->end_stream) && grpc_fields(e, cfg, frame + CFG(cfg, H2_CFG_FIELDS))) {
		count_bad_layout(st);
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

SEC("uprobe")
int h2c_recv_headers(struct pt_regs *ctx)
{
	return received(ctx, EV_H2_CLIENT_RESPONSE);
}

SEC("uprobe")
int h2c_recv_trailers(struct pt_regs *ctx)
{
	return received(ctx, EV_H2_CLIENT_TRAILERS);
}

SEC("uprobe")
int h2c_recv_reset(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 recv = PT_REGS_PARM2(ctx), counts = ctx->r9;
	__u64 conn = counts - CFG(cfg, H2_CFG_INNER_COUNTS);
	__u32 sid = (__u32)PT_REGS_PARM3(ctx);
	if (!user_ptr_ok(conn) || recv - CFG(cfg, H2_CFG_INNER_RECV) != conn || sid == 0) {
		count_bad_layout(st);
		return 0;
	}
	if ((sid & 1) == 0)
		return 0; /* a server-initiated (pushed) stream: never ours */
	struct h2_client_response_event e = {};
	fill_header(&e.hdr, EV_H2_CLIENT_RESET, cookie);
	e.conn = conn;
	e.stream_id = sid;
	e.grpc_status = -1;
	e.reset_code = (__u32)PT_REGS_PARM4(ctx);
	submit(st, &e, sizeof(e));
	return 0;
}

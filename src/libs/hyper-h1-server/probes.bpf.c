// SPDX-License-Identifier: Apache-2.0
/*
 * hyper HTTP/1 server probes (hyper 0.14 and 1.x).
 *
 * Probe points (declared in probes.ts):
 *   <Server as Http1Transaction>::parse   entry        request head bytes
 *   <Server as Http1Transaction>::encode  entry        msg.head.subject: the status (preferred)
 * and, when the offsets of msg.head and MessageHead.subject are not known for
 * the binary, the layout-free fallback:
 *   <Server as Http1Transaction>::encode  entry        remember dst and its length
 *   <Server as Http1Transaction>::encode  ret sites    the status line just written
 * and, when encode has no out-of-line copy (fat LTO inlines it into its
 * generic caller), the fallback that survives LTO:
 *   Conn<I,B,T>::write_head  (hyper 1.x)  entry        head.subject: the status,
 *   Conn<I,B,T>::encode_head (hyper 0.14)              and the Conn's address
 * The preferred form costs one hit per response instead of two, and the hit is
 * on encode's first instruction (push, emulated by the kernel: ~0.7 us here)
 * instead of a ret (single-stepped: ~10 us here).
 *
 * Both functions are non-generic and called from generic code instantiated in
 * the application crate, so they survive as out-of-line symbols in release
 * builds without LTO. Arguments (x86-64, checked by disassembly on hyper 0.14.32
 * and 1.x): parse(rdi = sret, rsi = &mut BytesMut, rdx = &ParseContext),
 * encode(rdi = sret, rsi = &Encode, rdx = &mut Vec<u8>).
 *
 * Return sites are probed with plain uprobes at each `ret` instead of a
 * uretprobe: a uretprobe replaces the return address on the stack, and a Rust
 * panic unwinding through that frame would find no unwind info and abort the
 * process.
 */
#include "common.h"
#include "events.h"
#include "../../propagation/context.h"

/* encode entry state, keyed by thread: entry and its ret run on one thread. */
struct h1_encode_call {
	__u64 dst_addr;
	__u64 len_at_entry;
	__u64 entry_ts_ns;
	__u64 msg_words[H1_MSG_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct h1_encode_call);
} h1_encode_calls SEC(".maps");

/*
 * The request event is built in place in the ring buffer, not in a per-CPU
 * scratch map: uprobe programs can be preempted, and a second thread on the
 * same CPU would then write into the same scratch. A ring reservation has a
 * size fixed at verification time, so there are two: a small one for the
 * common head and the full one (`cap` is a constant at each call site).
 */
static __always_inline void emit_request(struct probe_stats *st, __u64 cookie, const void *buf_addr,
					 const void *pctx, const struct byte_buf *buf, const __u32 cap)
{
	struct h1_request_event *e = bpf_ringbuf_reserve(&events, offsetof(struct h1_request_event, head) + cap, 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return;
	}
	fill_header(&e->hdr, EV_H1_SERVER_REQUEST, cookie);
	e->buf_addr = (__u64)buf_addr;
	if (bpf_probe_read_user(e->ctx_words, sizeof(e->ctx_words), pctx))
		__builtin_memset(e->ctx_words, 0, sizeof(e->ctx_words));
	e->task_id = current_task_id(cookie);
	e->buf_len = buf->len > 0xffffffffULL ? 0xffffffff : (__u32)buf->len;

	__u32 n = buf->len < cap ? (__u32)buf->len : cap;
	n &= (cap * 2 - 1);	/* bound for the verifier */
	if (n > cap)
		n = cap;
	if (bpf_probe_read_user(e->head, n, (const void *)buf->ptr)) {
		count_bad_layout(st);
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return;
	}
	e->captured = n;

	/* The server span's ids, and the context calls made by this task
	 * inherit (src/propagation/context.h). Each parse hit makes new ones:
	 * the last hit before the handler runs is the one that completed the
	 * head, and its event is the one the agent builds the span from. */
	struct prop_ids ids = {};
	__u8 parent[8];
	int at = prop_find_traceparent(e->head, n, cap);
	if (at < 0 || at > (int)(cap - PROP_TP_VALUE - 1) || prop_parse_traceparent(e->head + at, &ids, parent)) {
		__builtin_memset(&ids, 0, sizeof(ids));
		prop_new_trace_id(ids.trace_id);
		ids.flags = 1;
	}
	prop_new_span_id(ids.span_id);
	__builtin_memcpy(e->trace_id, ids.trace_id, 16);
	__builtin_memcpy(e->span_id, ids.span_id, 8);
	e->ctx_flags = H1_CTX_IDS | (ids.remote ? H1_CTX_REMOTE : 0);
	e->_pad = 0;
	struct prop_span_key sk = { .pid = e->hdr.pid, .span = prop_word(ids.span_id) };
	/* The incoming tracestate goes on with the trace (only with a valid
	 * traceparent, as W3C says); filed before the context that points to it. */
	if (ids.remote) {
		__u32 zero = 0;
		struct prop_tracestate *ts = bpf_map_lookup_elem(&prop_state_scratch, &zero);
		if (ts && prop_read_tracestate(e->head, n, cap, ts) == 0 &&
		    bpf_map_update_elem(&prop_span_state, &sk, ts, BPF_ANY) == 0)
			ids.has_state = 1;
	}
	bpf_map_update_elem(&prop_span_ctx, &sk, &ids, BPF_ANY);
	if (e->task_id) {
		struct prop_task_key tk = { .pid = e->hdr.pid, .task = e->task_id };
		bpf_map_update_elem(&prop_server_ctx, &tk, &ids, BPF_ANY);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
}

SEC("uprobe")
int h1_server_parse(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	const void *buf_addr = (const void *)PT_REGS_PARM2(ctx);
	const void *pctx = (const void *)PT_REGS_PARM3(ctx);

	struct byte_buf buf;
	if (read_byte_buf(buf_addr, 4, cookie, &buf) < 0) {
		count_bad_layout(st);
		return 0;
	}
	if (buf.len == 0)	/* nothing buffered yet: no request to see */
		return 0;
	if (buf.len <= H1_HEAD_CAPTURE_SMALL)
		emit_request(st, cookie, buf_addr, pctx, &buf, H1_HEAD_CAPTURE_SMALL);
	else
		emit_request(st, cookie, buf_addr, pctx, &buf, H1_HEAD_CAPTURE);
	return 0;
}

SEC("uprobe")
int h1_server_encode_status(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	const void *msg = (const void *)PT_REGS_PARM2(ctx);
	struct h1_response_event e = {};
	fill_header(&e.hdr, EV_H1_SERVER_RESPONSE, cookie);
	/* The span ends: what its lineage carries stops (context.h). */
	prop_server_done(e.hdr.pid, current_task_id(cookie));
	e.dst_addr = PT_REGS_PARM3(ctx);
	e.entry_ts_ns = e.hdr.ts_ns;

	__u32 word = COOKIE_CHAIN_WORD(cookie);
	__u64 head = 0;
	__u16 status = 0;
	if (word >= H1_MSG_WORDS || bpf_probe_read_user(e.msg_words, sizeof(e.msg_words), msg)) {
		count_bad_layout(st);
		return 0;
	}
	/* msg.head is among the words just copied: no second user-memory read.
	 * (Unrolled: the verifier wants constant stack offsets.) */
#pragma unroll
	for (__u32 i = 0; i < H1_MSG_WORDS; i++)
		if (i == word)
			head = e.msg_words[i];
	if (!user_ptr_ok(head) ||
	    bpf_probe_read_user(&status, sizeof(status), (const char *)head + COOKIE_CHAIN_OFF(cookie)) ||
	    status < 100 || status > 999) {
		count_bad_layout(st);
		return 0;
	}
	e.status = status;
	submit(st, &e, offsetof(struct h1_response_event, status_line));
	return 0;
}

SEC("uprobe")
int h1_server_encode_entry(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	const void *msg = (const void *)PT_REGS_PARM2(ctx);
	const void *dst = (const void *)PT_REGS_PARM3(ctx);
	prop_server_done(bpf_get_current_pid_tgid() >> 32, current_task_id(cookie));
	struct byte_buf vec;
	if (read_byte_buf(dst, 3, cookie, &vec) < 0) {
		count_bad_layout(st);
		return 0;
	}
	struct h1_encode_call call = {};
	call.dst_addr = (__u64)dst;
	call.len_at_entry = vec.len;
	call.entry_ts_ns = bpf_ktime_get_ns();
	bpf_probe_read_user(call.msg_words, sizeof(call.msg_words), msg);
	__u64 key = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&h1_encode_calls, &key, &call, BPF_ANY);
	return 0;
}

SEC("uprobe")
int h1_server_encode_ret(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	__u64 key = bpf_get_current_pid_tgid();
	struct h1_encode_call *call = bpf_map_lookup_elem(&h1_encode_calls, &key);
	if (!call) {
		if (st)
			__sync_fetch_and_add(&st->no_entry, 1);
		return 0;
	}
	struct h1_response_event e = {};
	fill_header(&e.hdr, EV_H1_SERVER_RESPONSE, cookie);
	e.dst_addr = call->dst_addr;
	e.entry_ts_ns = call->entry_ts_ns;
	__builtin_memcpy(e.msg_words, call->msg_words, sizeof(e.msg_words));
	__u64 len_at_entry = call->len_at_entry;
	bpf_map_delete_elem(&h1_encode_calls, &key);

	struct byte_buf vec;
	if (read_byte_buf((const void *)e.dst_addr, 3, cookie, &vec) < 0 || vec.len < len_at_entry) {
		count_bad_layout(st);
		return 0;
	}
	__u64 written = vec.len - len_at_entry;
	e.written = written > 0xffffffffULL ? 0xffffffff : (__u32)written;
	__u32 n = written < H1_STATUS_CAPTURE ? (__u32)written : H1_STATUS_CAPTURE;
	n &= (H1_STATUS_CAPTURE * 2 - 1);
	if (n > H1_STATUS_CAPTURE)
		n = H1_STATUS_CAPTURE;
	if (n && bpf_probe_read_user(e.status_line, n, (const void *)(vec.ptr + len_at_entry)))
		n = 0;
	e.captured = n;
	submit(st, &e, sizeof(e));
	return 0;
}

/*
 * The places fat LTO inlines encode into, both generic methods of Conn that
 * keep an out-of-line copy: hyper 1.x Conn::write_head(&mut self, head:
 * MessageHead<StatusCode>, body) (rdi = &mut Conn, rsi = &MessageHead), and
 * hyper 0.14 Conn::encode_head(&mut self, head, body) -> Option<Encoder>
 * (rdi = return slot, rsi = &mut Conn, rdx = &MessageHead). The status is
 * read at the MessageHead.subject offset the agent checked in the function's
 * code (COOKIE_CHAIN_OFF). There is no Encode here: the Conn's address goes
 * in msg_words[0], and the agent learns which ParseContext word
 * (&mut conn.state.method) lies at a fixed distance from it.
 */
static __always_inline int emit_conn_response(struct pt_regs *ctx, __u64 conn, const char *head)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	struct h1_response_event e = {};
	fill_header(&e.hdr, EV_H1_SERVER_RESPONSE_CONN, cookie);
	prop_server_done(e.hdr.pid, current_task_id(cookie));
	e.msg_words[0] = conn;
	e.entry_ts_ns = e.hdr.ts_ns;
	__u16 status = 0;
	if (!user_ptr_ok((__u64)head) || !user_ptr_ok(conn) ||
	    bpf_probe_read_user(&status, sizeof(status), head + COOKIE_CHAIN_OFF(cookie)) ||
	    status < 100 || status > 999) {
		count_bad_layout(st);
		return 0;
	}
	e.status = status;
	submit(st, &e, offsetof(struct h1_response_event, status_line));
	return 0;
}

SEC("uprobe")
int h1_server_write_head(struct pt_regs *ctx)
{
	return emit_conn_response(ctx, PT_REGS_PARM1(ctx), (const char *)PT_REGS_PARM2(ctx));
}

SEC("uprobe")
int h1_server_encode_head(struct pt_regs *ctx)
{
	return emit_conn_response(ctx, PT_REGS_PARM2(ctx), (const char *)PT_REGS_PARM3(ctx));
}

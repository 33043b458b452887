// SPDX-License-Identifier: Apache-2.0
/*
 * hyper HTTP/1 client probes (hyper 0.14 and 1.x): every HTTP/1 request a
 * hyper client sends, whoever drives it (reqwest 0.11/0.12/0.13, hyper-util's
 * legacy client, hyper::client::conn, hyper 0.14's Client).
 *
 * Probe points (declared in probes.ts), both function entries (a push:
 * emulated by the kernel):
 *   <Client as Http1Transaction>::encode  entry   a request head is about to be
 *       written into the connection's write buffer (rdx = &mut Vec<u8>): start
 *   <Client as Http1Transaction>::parse   entry   response bytes (rsi = &mut
 *       BytesMut): the status line and headers; end
 *
 * The request head bytes are read at parse time from the write buffer encode
 * filled: hyper clears that Vec after flushing it (len = 0) but keeps its
 * allocation, and an HTTP/1 connection writes no other head before this
 * response is read. So both heads are raw bytes and no hyper struct layout is
 * needed; the agent re-parses the request head and drops what does not parse.
 *
 * Pairing: Encode and ParseContext both hold `&mut conn.state.method`, one
 * address per connection. encode files its call in `h1c_calls` under each
 * pointer-shaped word of Encode; parse looks its own words up there. Keys
 * carry the tgid, so processes never meet.
 */
#include "common.h"
#include "events.h"
#include "../../propagation/context.h"
#include "../otel-sdk/current.h"

struct h1c_key {
	__u32 tgid;
	__u32 _pad;
	__u64 addr;
};

struct h1c_call {
	__u64 dst_addr;		/* &mut Vec<u8> of the connection's head buffer */
	__u64 ts_ns;
	__u64 task_id;
	__u32 tid;
	__u8 vec_ptr_idx;	/* Vec<u8> word indexes (encode's cookie layout) */
	__u8 vec_cap_idx;
	__u8 vec_len_idx;
	__u8 _pad;
	__u8 span_id[8];	/* the CLIENT span's id (made at encode) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct h1c_key);
	__type(value, struct h1c_call);
} h1c_calls SEC(".maps");

static __always_inline int ptr_word(__u64 w)
{
	return user_ptr_ok(w) && (w & 7) == 0;
}

SEC("uprobe")
int h1_client_encode(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);

	const void *msg = (const void *)PT_REGS_PARM2(ctx);
	struct h1c_request_event e = {};
	fill_header(&e.hdr, EV_H1_CLIENT_REQUEST, cookie);
	if (bpf_probe_read_user(e.msg_words, sizeof(e.msg_words), msg)) {
		count_bad_layout(st);
		return 0;
	}
	e.dst_addr = PT_REGS_PARM3(ctx);
	e.task_id = current_task_id(cookie);
	e.vec_ptr_idx = COOKIE_PTR_IDX(cookie);
	e.vec_cap_idx = COOKIE_CAP_IDX(cookie);

	struct h1c_call call = {};
	call.dst_addr = e.dst_addr;
	call.ts_ns = e.hdr.ts_ns;
	call.task_id = e.task_id;
	call.tid = e.hdr.tid;
	call.vec_ptr_idx = COOKIE_PTR_IDX(cookie);
	call.vec_cap_idx = COOKIE_CAP_IDX(cookie);
	call.vec_len_idx = COOKIE_LEN_IDX(cookie);
	/* The client span's id, made now: the socket program puts it on the
	 * wire when this thread writes the head (src/propagation), and the
	 * agent exports the span under it. */
	prop_new_span_id(e.span_id);
	__builtin_memcpy(call.span_id, e.span_id, 8);
	struct prop_outgoing out = { .ts_ns = e.hdr.ts_ns };
	__builtin_memcpy(out.span_id, e.span_id, 8);
	__u64 me = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&prop_outgoing, &me, &out, BPF_ANY);
	struct h1c_key k = { .tgid = e.hdr.pid };
#pragma unroll
	for (int i = 0; i < H1C_MSG_WORDS; i++) {
		if (!ptr_word(e.msg_words[i]))
			continue;
		k.addr = e.msg_words[i];
		bpf_map_update_elem(&h1c_calls, &k, &call, BPF_ANY);
	}
	submit(st, &e, sizeof(e));
	return 0;
}

SEC("uprobe")
int h1_client_parse(struct pt_regs *ctx)
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
	if (buf.len == 0)
		return 0;
	__u64 words[H1C_CTX_WORDS] = {};
	if (bpf_probe_read_user(words, sizeof(words), pctx)) {
		count_bad_layout(st);
		return 0;
	}
	struct h1c_key k = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct h1c_call *call = 0;
	__u64 key = 0;
#pragma unroll
	for (int i = 0; i < H1C_CTX_WORDS; i++) {
		if (call || !ptr_word(words[i]))
			continue;
		k.addr = words[i];
		call = bpf_map_lookup_elem(&h1c_calls, &k);
		if (call)
			key = words[i];
	}
	if (!call) {
		if (st)
			__sync_fetch_and_add(&st->no_entry, 1);
		return 0;
	}
	struct h1c_response_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	fill_header(&e->hdr, EV_H1_CLIENT_RESPONSE, cookie);
	e->key = key;
	e->req_ts_ns = call->ts_ns;
	e->req_task_id = call->task_id;
	e->req_tid = call->tid;
	e->res_len = buf.len > 0xffffffffULL ? 0xffffffff : (__u32)buf.len;
	e->req_captured = 0;
	e->res_captured = 0;
	__builtin_memcpy(e->span_id, call->span_id, 8);

	__u32 n = buf.len < H1C_RES_CAPTURE ? (__u32)buf.len : H1C_RES_CAPTURE;
	n &= (H1C_RES_CAPTURE * 2 - 1);
	if (n > H1C_RES_CAPTURE)
		n = H1C_RES_CAPTURE;
	if (n && bpf_probe_read_user(e->res_head, n, (const void *)buf.ptr) == 0)
		e->res_captured = n;

	/* The request head: the write buffer's allocation, from its start. */
	__u64 vw[3] = {};
	__u64 dst = call->dst_addr;
	__u32 pi = call->vec_ptr_idx, ci = call->vec_cap_idx;
	if (pi < 3 && ci < 3 && pi != ci && bpf_probe_read_user(vw, sizeof(vw), (const void *)dst) == 0) {
		__u64 ptr = 0;
		__u64 cap = 0;
		/* (constant stack offsets for the verifier) */
		if (pi == 0) ptr = vw[0]; else if (pi == 1) ptr = vw[1]; else ptr = vw[2];
		if (ci == 0) cap = vw[0]; else if (ci == 1) cap = vw[1]; else cap = vw[2];
		if (user_ptr_ok(ptr)) {
			/* The allocation's untouched pages may not be present yet, and a
			 * read that crosses into one fails as a whole (no page faults from
			 * here): then only up to the end of the head's first page. */
			__u32 want = cap < H1C_REQ_CAPTURE ? (__u32)cap : H1C_REQ_CAPTURE;
			want &= (H1C_REQ_CAPTURE * 2 - 1);
			if (want > H1C_REQ_CAPTURE)
				want = H1C_REQ_CAPTURE;
			if (want && bpf_probe_read_user(e->req_head, want, (const void *)ptr) == 0) {
				e->req_captured = want;
			} else {
				__u32 first = 4096 - (__u32)(ptr & 4095);
				if (first > want)
					first = want;
				first &= (H1C_REQ_CAPTURE * 2 - 1);
				if (first > H1C_REQ_CAPTURE)
					first = H1C_REQ_CAPTURE;
				if (first && bpf_probe_read_user(e->req_head, first, (const void *)ptr) == 0)
					e->req_captured = first;
			}
		}
	}
	if (!e->res_captured || !e->req_captured)
		count_bad_layout(st);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

/*
 * reqwest: <Client>::execute_request(&self, req: Request) entry, in the
 * caller's task (RequestBuilder::send and Client::execute both funnel into
 * it; reqwest::blocking forwards to it on its runtime thread). rsi = &Request.
 * The URL is found by shape, not by layout: the String (Vec<u8> order from
 * the cookie) among Request's words whose bytes start with http:// or
 * https://, which is Url.serialization.
 */
struct rq_scan {
	__u64 w[RQ_SCAN_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rq_scan);
} rq_scratch SEC(".maps");

/* The Url String among the RQ_SCAN_WORDS words at `req`: its address, or 0. */
static __always_inline __u64 find_url(struct rq_scan *sc, const void *req, __u64 cookie, __u64 *len_out)
{
	if (!user_ptr_ok((__u64)req) || bpf_probe_read_user(sc->w, sizeof(sc->w), req))
		return 0;
	__u32 pi = COOKIE_PTR_IDX(cookie), li = COOKIE_LEN_IDX(cookie), ci = COOKIE_CAP_IDX(cookie);
	if (pi > 2 || li > 2 || ci > 2 || pi == li || pi == ci || li == ci)
		return 0;
	for (__u32 i = 0; i + 2 < RQ_SCAN_WORDS; i++) {
		__u64 p = sc->w[(i + pi) & (RQ_SCAN_WORDS - 1)];
		__u64 l = sc->w[(i + li) & (RQ_SCAN_WORDS - 1)];
		__u64 c = sc->w[(i + ci) & (RQ_SCAN_WORDS - 1)];
		if (!user_ptr_ok(p) || l < 10 || l > c || l > 65536)
			continue;
		__u64 head = 0;
		if (bpf_probe_read_user(&head, sizeof(head), (const void *)p))
			continue;
		/* "http://" (7 bytes) or "https://" (little-endian words) */
		if ((head & 0x00ffffffffffffffULL) == 0x002f2f3a70747468ULL || head == 0x2f2f3a7370747468ULL) {
			/* A serialized URL is printable ASCII to its end. A stale
			 * buffer that still starts with an old URL (heap reuse:
			 * a String/Vec of the Request whose bytes begin with a
			 * freed URL, with its own length; seen in otelctx-service)
			 * has other bytes at its end: its last 8 must be printable. */
			__u64 tail = 0;
			if (bpf_probe_read_user(&tail, sizeof(tail), (const void *)(p + l - 8)))
				continue;
			/* Branch-free: a byte >= 0x80, a byte < 0x21, a byte 0x7f. */
			const __u64 ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
			__u64 del = tail ^ (0x7f * ones);
			if ((tail & highs) || (((tail - 0x21 * ones) & ~tail) & highs) || (((del - ones) & ~del) & highs))
				continue;
			*len_out = l;
			return p;
		}
	}
	return 0;
}

/*
 * Files this call under its request target (src/propagation/context.h,
 * prop_calls) with the context of the server span its task is handling, so
 * the socket program can give the wire request that context. Only http://
 * URLs: an https request is ciphertext on the socket. The target is the URL
 * from the first '/' after the authority up to a '#' (hyper writes
 * path-and-query in origin form; the fragment never goes out).
 */
/* A u64 as its 8 big-endian bytes (W3C id byte order). */
static __always_inline void be64_into(__u8 *dst, __u64 v)
{
#pragma unroll
	for (int i = 0; i < 8; i++)
		dst[i] = (__u8)(v >> (56 - 8 * i));
}

/*
 * The application's confirmed current manual span as the context of this
 * call's wire request: filed under the manual span's id (prop_span_ctx is
 * keyed by span id and immutable once written), so the socket program sends
 * the manual span's trace id, the same one the agent exports the CLIENT span
 * with. Returns the owner word, or 0 if it could not be filed.
 */
static __always_inline __u64 file_manual_ctx(__u32 pid, const struct reqwest_call_event *e, int from_sdk)
{
	struct prop_ids ids = {};
	if (from_sdk) {
		be64_into(ids.trace_id, e->sdk_trace_hi);
		be64_into(ids.trace_id + 8, e->sdk_trace_lo);
		be64_into(ids.span_id, e->sdk_span_id);
	} else {
		__builtin_memcpy(ids.trace_id, e->tctx_trace_id, 16);
		__builtin_memcpy(ids.span_id, e->tctx_span_id, 8);
	}
	ids.flags = 1;
	__u64 w = prop_word(ids.span_id);
	if (w == 0 || w == PROP_NO_CTX || w == PROP_AMBIGUOUS)
		return 0;
	struct prop_span_key sk = { .pid = pid, .span = w };
	bpf_map_update_elem(&prop_span_ctx, &sk, &ids, BPF_NOEXIST);
	return w;
}

/* A reqwest call just filed: its hyper-util / hyper 0.14 origin_form (same
 * task, same target) must not file it again (prop_rq_open, context.h). */
static __always_inline void note_rq_open(__u32 pid, __u64 task, __u32 len, __u64 h, __u64 now)
{
	struct prop_rq_key rk = { .pid = pid, .len = len, .hash = h, .task = task };
	struct prop_rq_open *o = bpf_map_lookup_elem(&prop_rq_open, &rk);
	if (o && now - o->ts_ns <= PROP_CALL_STALE_NS) {
		__sync_fetch_and_add(&o->count, 1);
		o->ts_ns = now;
		return;
	}
	struct prop_rq_open fresh = { .count = 1, .ts_ns = now };
	bpf_map_update_elem(&prop_rq_open, &rk, &fresh, BPF_ANY);
}

/* Was a reqwest call for this target filed in `task` (or outside any task:
 * reqwest::blocking's runtime thread, whose request future then runs in a
 * task of its own) and not yet seen here? Uses it up. */
static __always_inline int take_rq_open(__u32 pid, __u64 task, __u32 len, __u64 h, __u64 now)
{
	struct prop_rq_key rk = { .pid = pid, .len = len, .hash = h, .task = task };
#pragma unroll
	for (int k = 0; k < 2; k++) {
		if (k == 1) {
			if (task == 0)
				break;
			rk.task = 0;
		}
		struct prop_rq_open *o = bpf_map_lookup_elem(&prop_rq_open, &rk);
		if (!o || now - o->ts_ns > PROP_CALL_STALE_NS)
			continue;
		__u64 before = __sync_fetch_and_add(&o->count, -1);
		if (before == 0 || before > (1ULL << 32)) {
			__sync_fetch_and_add(&o->count, 1);
			continue;
		}
		return 1;
	}
	return 0;
}

/* `blocking`: a reqwest::blocking call, filed on the calling thread; its
 * request reaches hyper on reqwest's runtime thread, outside this task. */
static __always_inline void register_call(__u32 pid, __u64 task, __u32 tid, const __u8 *url, __u32 n, __u64 now, __u64 manual_owner, int blocking)
{
	if (n < 8 || url[0] != 'h' || url[4] != ':' || url[5] != '/' || url[6] != '/')
		return;
	__u64 h = PROP_FNV_INIT;
	__u32 len = 0, in_path = 0;
	for (__u32 i = 7; i < RQ_URL_CAPTURE; i++) {
		if (i >= n)
			break;
		__u8 c = url[i];
		if (!in_path) {
			if (c != '/')
				continue;
			in_path = 1;
		}
		if (c == '#')
			break;
		h = (h ^ c) * PROP_FNV_PRIME;
		len++;
	}
	if (!in_path || n >= RQ_URL_CAPTURE)	/* no path, or the URL was cut: no key */
		return;
	/* hyper-util / hyper 0.14 will see this request at origin_form (HTTP/1
	 * connections): it is filed here, not there. A blocking call gets there
	 * from reqwest's runtime, in a task of its own: noted as outside any
	 * task, which take_rq_open also accepts. */
	note_rq_open(pid, blocking ? 0 : task, len, h, now);
	/* Inside a confirmed manual span: that span is the caller's context;
	 * else the server span the task handles, or its lineage carries
	 * (spawned tasks, threads: src/propagation/context.h). */
	__u64 owner = manual_owner ? manual_owner : prop_owner_of(pid, task, tid);
	struct prop_call_key ck = { .pid = pid, .len = len, .hash = h };
	struct prop_call *c = bpf_map_lookup_elem(&prop_calls, &ck);
	if (c && c->pending != 0 && now - c->last_ns > PROP_CALL_STALE_NS) {
		/* Nothing registered or sent on this target for long: what still
		 * counts as pending never reached the wire. */
		bpf_map_delete_elem(&prop_calls, &ck);
		c = 0;
	}
	if (!c) {
		struct prop_call fresh = { .owner = owner, .pending = 1, .last_ns = now };
		if (bpf_map_update_elem(&prop_calls, &ck, &fresh, BPF_NOEXIST) == 0)
			return;
		c = bpf_map_lookup_elem(&prop_calls, &ck);
		if (!c)
			return;
	}
	/* Released (no call waiting): claim it; otherwise another span's calls
	 * wait for the same target and nobody can tell the wire requests apart. */
	__u64 old = __sync_val_compare_and_swap(&c->owner, 0, owner);
	if (old != 0 && old != owner)
		__sync_lock_test_and_set(&c->owner, PROP_AMBIGUOUS);
	__sync_fetch_and_add(&c->pending, 1);
	c->last_ns = now;
}

/* reqwest::blocking's runtime thread: "reqwest-internal-sync-runtime",
 * as the kernel keeps it (15 bytes and a NUL). */
static __always_inline int reqwest_runtime_thread(const __u8 *comm)
{
	__u64 a, b;
	__builtin_memcpy(&a, comm, 8);
	__builtin_memcpy(&b, comm + 8, 8);
	return a == 0x2d74736577716572ULL /* "reqwest-" */ && b == 0x00616e7265746e69ULL /* "interna\0" */;
}

static __always_inline int reqwest_call(struct pt_regs *ctx, __u16 kind)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	__u32 zero = 0;
	struct rq_scan *sc = bpf_map_lookup_elem(&rq_scratch, &zero);
	if (!sc)
		return 0;
	/* async execute_request: &Request is rsi where Pending comes back in
	 * rax:rdx (0.12, 0.13) and rdx where it comes back through a hidden
	 * sret pointer in rdi (0.11). blocking::Client::execute returns
	 * crate::Result<Response> (too big for registers) through sret in
	 * every version: rdi = sret, rsi = &self, rdx = &Request. Scanning rsi
	 * there read the memory around the Client, and in about 1 call of 600
	 * it held a stale String that began with an older URL (a freed
	 * "http://…/blocking/c" of 33 bytes for ".../blocking/c3"): the call was
	 * filed under that URL, its hand-over found no blocking call, and it
	 * went out a root without traceparent (issue 8e). */
	__u64 len = 0;
	__u64 url = 0;
	if (kind != EV_REQWEST_BLOCKING_CALL)
		url = find_url(sc, (const void *)PT_REGS_PARM2(ctx), cookie, &len);
	if (!url)
		url = find_url(sc, (const void *)PT_REGS_PARM3(ctx), cookie, &len);
	if (!url) {
		count_bad_layout(st);
		return 0;
	}
	struct reqwest_call_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (st)
			__sync_fetch_and_add(&st->drops, 1);
		return 0;
	}
	fill_header(&e->hdr, kind, cookie);
	e->task_id = current_task_id(cookie);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->url_len = (__u32)len;
	__u32 n = len < RQ_URL_CAPTURE ? (__u32)len : RQ_URL_CAPTURE;
	n &= (RQ_URL_CAPTURE * 2 - 1);
	if (n > RQ_URL_CAPTURE)
		n = RQ_URL_CAPTURE;
	if (bpf_probe_read_user(e->url, n, (const void *)url))
		n = 0;
	e->captured = n;
	/* The application's own current span, if its SDK has one on this thread
	 * (src/libs/otel-sdk/current.h): the agent exports the CLIENT span as
	 * its child when the trace id is confirmed. */
	__u64 lo = 0, hi = 0, sp = 0;
	e->sdk_state = otel_current_span(cookie, e->hdr.pid, &lo, &hi, &sp);
	e->sdk_trace_lo = lo;
	e->sdk_trace_hi = hi;
	e->sdk_span_id = sp;
	__builtin_memset(e->_pad0, 0, sizeof(e->_pad0));
	__builtin_memset(e->tctx_trace_id, 0, sizeof(e->tctx_trace_id));
	__builtin_memset(e->tctx_span_id, 0, sizeof(e->tctx_span_id));
	/* And the OTEP 4947 thread context, if the process publishes one. The
	 * SDK's confirmed current span wins over it (see spans.ts). */
	e->tctx_state = otel_thread_ctx(cookie, e->tctx_trace_id, e->tctx_span_id);
	__u64 manual_owner = 0;
	if (kind == EV_REQWEST_CALL) {
		if (e->sdk_state == OTEL_CX_OK)
			manual_owner = file_manual_ctx(e->hdr.pid, e, 1);
		else if (e->tctx_state == TCTX_OK)
			manual_owner = file_manual_ctx(e->hdr.pid, e, 0);
	}
	/* A blocking call is filed here, on the calling thread, where its
	 * lineage is known (a spawn_blocking task, a std thread); it reaches the
	 * wire through execute_request on reqwest's runtime thread outside any
	 * task, which is then not filed again (one filing per wire request). */
	if (n && (kind == EV_REQWEST_BLOCKING_CALL || e->task_id != 0 || !reqwest_runtime_thread(e->comm)))
		register_call(e->hdr.pid, e->task_id, e->hdr.tid, e->url, n, e->hdr.ts_ns, manual_owner, kind == EV_REQWEST_BLOCKING_CALL);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	return 0;
}

SEC("uprobe")
int reqwest_execute_request(struct pt_regs *ctx)
{
	return reqwest_call(ctx, EV_REQWEST_CALL);
}

/*
 * hyper's own clients used directly (no reqwest): hyper-util's legacy
 * Client and hyper 0.14's Client call the non-generic
 * `origin_form(uri: &mut Uri)` (rdi) on every request bound for a plain
 * HTTP/1 connection (not proxied, not CONNECT), in the caller's task (the
 * client's ResponseFuture is polled there), right before the request is
 * handed to the connection task that encodes it. The Uri still holds the
 * path and query that go on the wire in the request line: that is the key
 * the socket program joins on (prop_calls), filed here with the server span
 * the caller's task is handling, exactly as reqwest's execute_request does.
 *
 * The target is found by shape, not by layout: among the Uri's words, the
 * one (ptr, len) pair whose bytes start with '/' (http's PathAndQuery; the
 * authority never does, a standard scheme holds no pointer). None, or two
 * different ones, or a byte the socket program would refuse (outside
 * 0x21..0x7e), or longer than RQ_URL_CAPTURE - 1: nothing filed, counted
 * as bad layout (the request then goes out unchanged, propNoContext).
 * reqwest's calls pass here too: those execute_request filed already
 * (prop_rq_open) are skipped (no_entry counts them).
 */
#define HO_URI_WORDS 11

struct ho_scratch {
	__u64 w[HO_URI_WORDS + 1];
	__u8 b[RQ_URL_CAPTURE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ho_scratch);
} ho_scratch SEC(".maps");

SEC("uprobe")
int hyper_origin_form(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	__u32 zero = 0;
	struct ho_scratch *sc = bpf_map_lookup_elem(&ho_scratch, &zero);
	if (!sc)
		return 0;
	const void *uri = (const void *)PT_REGS_PARM1(ctx);
	if (!user_ptr_ok((__u64)uri) || bpf_probe_read_user(sc->w, sizeof(sc->w[0]) * HO_URI_WORDS, uri)) {
		count_bad_layout(st);
		return 0;
	}
	/* Only plaintext http: the scheme is http's Scheme2 (tag byte 0:
	 * 1 = Standard, then Protocol byte 1: 0 = Http, 1 = Https). Anything
	 * else (https, another scheme, no scheme) is not filed: its bytes on
	 * the socket are not a plaintext request line. */
	if ((sc->w[0] & 0xffff) != 0x0001) {
		if ((sc->w[0] & 0xffff) != 0x0101)
			count_bad_layout(st);
		return 0;
	}
	__u64 ptr = 0, len = 0;
	int found = 0;
	for (int i = 0; i + 1 < HO_URI_WORDS; i++) {
		__u64 p = sc->w[i], l = sc->w[i + 1];
		if (!user_ptr_ok(p) || l == 0 || l >= RQ_URL_CAPTURE)
			continue;
		__u8 c0 = 0;
		if (bpf_probe_read_user(&c0, 1, (const void *)p) || c0 != '/')
			continue;
		if (found && (p != ptr || l != len)) {
			found = 2;
			break;
		}
		ptr = p;
		len = l;
		found = 1;
	}
	if (found != 1) {
		count_bad_layout(st);
		return 0;
	}
	__u32 n = (__u32)len & (RQ_URL_CAPTURE - 1);
	if (n == 0 || bpf_probe_read_user(sc->b, n, (const void *)ptr)) {
		count_bad_layout(st);
		return 0;
	}
	/* The socket program's rule for the request target: FNV-1a of its bytes, each 0x21..0x7e. */
	__u64 h = PROP_FNV_INIT;
	for (__u32 i = 0; i < RQ_URL_CAPTURE; i++) {
		if (i >= n)
			break;
		__u8 c = sc->b[i];
		if (c < 0x21 || c > 0x7e) {
			count_bad_layout(st);
			return 0;
		}
		h = (h ^ c) * PROP_FNV_PRIME;
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u64 task = current_task_id(cookie);
	if (st)
		__sync_fetch_and_add(&st->events, 1);
	if (take_rq_open(pid, task, n, h, now)) {
		if (st)
			__sync_fetch_and_add(&st->no_entry, 1);
		return 0;
	}
	prop_file_call(pid, task, tid, n, h, now);
	return 0;
}

/*
 * reqwest::blocking: <blocking::Client>::execute(&self, req) entry, on the
 * calling thread (RequestBuilder::send funnels into it), before the request
 * is handed to reqwest's runtime thread, where execute_request then runs
 * outside any task. Same URL scan: rsi or rdx = &blocking::Request, whose
 * async Request (and Url) is inline.
 */
SEC("uprobe")
int reqwest_blocking_execute(struct pt_regs *ctx)
{
	return reqwest_call(ctx, EV_REQWEST_BLOCKING_CALL);
}

/*
 * reqwest 0.12/0.13: reqwest::error::request(e) entry, e = the
 * hyper_util::client::legacy::Error of a failed request, by pointer in rdi
 * (its one caller: HyperService's `map_err(crate::error::request)`, polled in
 * the caller's task). Nothing is assumed about that error's layout: a connect
 * failure is recognised by content, two boxes down:
 *   the error holds a Box<dyn Error> (data word, vtable word) whose data is
 *   hyper-util's ConnectError { msg: &'static str, addr, cause: Box<dyn Error> };
 *   msg is exactly "tcp connect error" or "dns error" (its literals), and for
 *   the first, the cause's data is std's bit-packed io::Error: an OS error is
 *   (code << 32) | 0b10.
 * Every read is bpf_probe_read_user of a pointer-shaped word; anything that
 * does not match is RQE_OTHER. Only failed calls reach this function.
 */
static __always_inline int ptr_pair(__u64 data, __u64 vtable)
{
	return ptr_word(data) && ptr_word(vtable);
}

/* "tcp connect error" and "dns error" as little-endian words (zero-padded). */
#define RQE_TCP0 0x6e6e6f6320706374ULL	/* "tcp conn" */
#define RQE_TCP1 0x6f72726520746365ULL	/* "ect erro" */
#define RQE_TCP2 0x72ULL		/* "r" */
#define RQE_DNS0 0x6f72726520736e64ULL	/* "dns erro" */
#define RQE_DNS1 0x72ULL		/* "r" */

/*
 * The boxed value at `p`, if it is hyper-util's ConnectError: what | os << 8
 * (RQE_OTHER when not). A subprogram of its own, verified once, so the
 * caller's loop stays small.
 */
__attribute__((noinline)) __u64 rqe_connect_error(__u64 p)
{
	__u64 c[RQE_WORDS] = {};
	if (!ptr_word(p) || bpf_probe_read_user(c, sizeof(c), (const void *)p))
		return RQE_OTHER;
	int mi = -1;
	__u64 what = RQE_OTHER;
	for (int j = 0; j + 1 < RQE_WORDS; j++) {
		__u64 len = c[j + 1];
		if ((len != 17 && len != 9) || !user_ptr_ok(c[j]))
			continue;
		__u64 b[3] = {};
		if (bpf_probe_read_user(b, len == 17 ? 17 : 9, (const void *)c[j]))
			continue;
		if (len == 17 && b[0] == RQE_TCP0 && b[1] == RQE_TCP1 && b[2] == RQE_TCP2) {
			what = RQE_TCP_CONNECT;
			mi = j;
			break;
		}
		if (len == 9 && b[0] == RQE_DNS0 && b[1] == RQE_DNS1) {
			what = RQE_DNS;
			mi = j;
			break;
		}
	}
	if (what != RQE_TCP_CONNECT)
		return what;
	for (int k = 0; k + 1 < RQE_WORDS; k++) {
		if (k == mi || k == mi + 1 || k + 1 == mi || !ptr_pair(c[k], c[k + 1]))
			continue;
		__u64 repr = read_user_u64(c[k]);
		__u64 code = repr >> 32;
		if ((repr & 3) == 2 && code > 0 && code < 4096)
			return what | (code << 8);
	}
	return what;
}

SEC("uprobe")
int reqwest_request_error(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	__u64 w[RQE_WORDS] = {};
	const void *err = (const void *)PT_REGS_PARM1(ctx);
	if (!user_ptr_ok((__u64)err) || bpf_probe_read_user(w, sizeof(w), err)) {
		count_bad_layout(st);
		return 0;
	}
	__u64 r = RQE_OTHER;
	for (int i = 0; i + 1 < RQE_WORDS; i++) {
		if (!ptr_pair(w[i], w[i + 1]))
			continue;
		r = rqe_connect_error(w[i]);
		if ((r & 0xff) != RQE_OTHER)
			break;
	}
	struct reqwest_error_event e = {};
	fill_header(&e.hdr, EV_REQWEST_ERROR, cookie);
	e.task_id = current_task_id(cookie);
	e.os_error = (__u32)(r >> 8);
	e.what = (__u8)(r & 0xff);
	submit(st, &e, sizeof(e));
	return 0;
}

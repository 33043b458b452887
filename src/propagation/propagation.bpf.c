// SPDX-License-Identifier: Apache-2.0
/*
 * Outgoing W3C trace context without writing user memory: the traceparent
 * header is inserted into the plaintext HTTP/1 request head as it passes the
 * socket layer (works under kernel lockdown, where bpf_probe_write_user is
 * refused).
 *
 *   prop_sockops  (cgroup sock_ops, attached to each traced process's cgroup)
 *       files every connection the cgroup opens (active side: clients) in
 *       the sockhash prop_socks;
 *   prop_sk_msg   (sk_msg verdict on prop_socks) runs in the writer's
 *       syscall. It acts only on a thread whose hyper client encode just
 *       made a client span id (prop_outgoing, see context.h): on that
 *       thread's first write, if the bytes are a whole plaintext HTTP/1
 *       request head without a traceparent, and a reqwest call from a server
 *       span waits for exactly this request target (prop_calls), it inserts
 *       "traceparent: 00-<caller's trace id>-<client span id>-<flags>\r\n"
 *       after the request line. Anything else goes out byte for byte as the
 *       application wrote it, and is counted (h1c_propagation_event.outcome).
 *
 * Every check is made before the message is touched; if the kernel refuses
 * to linearize the inserted bytes after growing the message, they are taken
 * out again (bpf_msg_pop_data), so a request is never sent half-edited.
 */
#include "common.h"
#include "../libs/hyper-h1-client/events.h"
#include "../libs/h2-client/events.h"
#include "context.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} prop_socks SEC(".maps");

/* The head must have been encoded on this thread at most this long ago:
 * hyper writes a head in the poll that encoded it. An older entry means its
 * write happened elsewhere; it is not used for whatever this thread sends. */
#define PROP_OUTGOING_MAX_NS (50ULL * 1000000ULL)

SEC("sockops")
int prop_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		__u64 cookie = bpf_get_socket_cookie(skops);
		bpf_sock_hash_update(skops, &prop_socks, &cookie, BPF_NOEXIST);
	}
	return 1;
}

static __always_inline __u8 hex_digit(__u8 d)
{
	return d < 10 ? '0' + d : 'a' + d - 10;
}

static __always_inline void hex_into(__u8 *dst, const __u8 *src, const int n)
{
#pragma unroll
	for (int i = 0; i < n; i++) {
		dst[2 * i] = hex_digit(src[i] >> 4);
		dst[2 * i + 1] = hex_digit(src[i] & 15);
	}
}

/* A copy of the write's first bytes to scan (bpf_loop callbacks cannot
 * touch packet data). Per CPU, with a busy flag: a program preempted on this
 * CPU leaves it to its owner, the other one sends its request unchanged. */
struct prop_scratch {
	__u64 busy;
	__u32 n;
	__u32 _pad;
	__u8 b[H1C_PROP_SCAN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prop_scratch);
} prop_scratch SEC(".maps");

struct line_scan {
	struct prop_scratch *sc;
	__u64 hash;
	__u32 target;		/* where the target starts */
	__u32 target_end;	/* the space after it (0: not found) */
	__u32 bad;
	__u32 head_end;		/* after the empty line (0: not found) */
	__u32 present;
	__u32 state_present;	/* the request has a tracestate of its own */
	__u32 from;
};

/* Request line: METHOD SP origin-form-target SP; hashes the target. */
static long scan_request_line(__u64 i, struct line_scan *s)
{
	__u32 k = (__u32)i & (H1C_PROP_SCAN - 1);
	if (k >= s->sc->n)
		return 1;
	__u8 c = s->sc->b[k];
	if (!s->target) {
		if (c == ' ') {
			if (k == 0 || k > 15)
				s->bad = 1;
			s->target = k + 1;
			return s->bad;
		}
		if (c < 'A' || c > 'Z') {
			s->bad = 1;
			return 1;
		}
		return 0;
	}
	if (k == s->target && c != '/') {
		s->bad = 1;
		return 1;
	}
	if (c == ' ') {
		s->target_end = k;
		return 1;
	}
	if (c < 0x21 || c > 0x7e) {
		s->bad = 1;
		return 1;
	}
	s->hash = (s->hash ^ c) * PROP_FNV_PRIME;
	return 0;
}

/* Headers: the empty line that ends the head, or an own traceparent. */
static long scan_headers(__u64 i, struct line_scan *s)
{
	__u32 k = (s->from + (__u32)i) & (H1C_PROP_SCAN - 1);
	struct prop_scratch *sc = s->sc;
	if (k + 2 >= sc->n || k + 16 > H1C_PROP_SCAN)
		return 1;
	if (sc->b[k] != '\n')
		return 0;
	if (sc->b[k + 1] == '\r' && sc->b[k + 2] == '\n') {
		s->head_end = k + 3;
		return 1;
	}
	if (k + 13 > sc->n)
		return 0;
	__u64 x;
	__u32 y;
	__builtin_memcpy(&x, &sc->b[k], 8);
	__builtin_memcpy(&y, &sc->b[k + 8], 4);
	if ((x | 0x2020202020202000ULL) == 0x617065636172740aULL && (y | 0x20202020) == 0x746e6572 && sc->b[k + 12] == ':') {
		s->present = 1;
		return 1;
	}
	if ((x | 0x2020202020202000ULL) == 0x747365636172740aULL && (y | 0x20202020) == 0x3a657461) /* "\ntracestate:" */
		s->state_present = 1;
	return 0;
}


/*
 * HTTP/2 over plaintext TCP (h2c, prior knowledge). Every socket's bytes are
 * followed frame by frame from its first write (the connection preface):
 * frame boundaries are known only that way, since a write may start or end
 * anywhere in a frame. Per socket: what is left of the current frame.
 */
/* A request HEADERS frame met in this write (at most H2_REC are looked at). */
struct h2_hf {
	__u32 at;		/* the frame header's offset in this write */
	__u32 len;		/* payload length */
	__u32 sid;
	__u8 flags;
	__u8 whole;		/* header and payload inside this write */
	__u8 _pad[2];
};

/* A HEADERS frame chosen for an insertion in this write. */
struct h2_cand {
	__u32 at;		/* the frame header's offset in the message */
	__u32 len;		/* its payload length */
	__u32 sid;
	__u32 ok;
	struct prop_h2_out o;
};

/* Request HEADERS frames looked at per write (each may get the field). */
#define H2_REC 8

struct h2_sock {
	__u32 skip;		/* payload bytes of the current frame still to come */
	__u8 mode;		/* H2S_* */
	__u8 hlen;		/* bytes of a frame header seen at the end of the last write */
	__u8 nh;		/* request HEADERS frames recorded in hf for this write */
	__u8 over;		/* request HEADERS frames beyond the two recorded (saturates at 255) */
	__u8 hbuf[16];		/* the current frame header's bytes */
	/* Scratch of the write being walked (the socket is locked during sendmsg). */
	struct h2_hf hf[H2_REC];
	struct h2_cand cand[H2_REC];
};

#define H2S_NEW		0	/* no write seen yet */
#define H2S_SYNC	1	/* h2c: frames followed */
#define H2S_OTHER	2	/* not h2c (HTTP/1, TLS...): the HTTP/1 path's business */
#define H2S_LOST	3	/* h2c, but frames no longer followed: never touched again */

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct h2_sock);
} prop_h2_socks SEC(".maps");

static __always_inline void h2_event(struct h2c_propagation_event *ev, __u32 sid, const __u8 *span_id, __u8 outcome)
{
	ev->stream_id = sid;
	ev->outcome = outcome;
	__builtin_memcpy(ev->span_id, span_id, 8);
	bpf_ringbuf_output(&events, ev, sizeof(*ev), BPF_RB_NO_WAKEUP);
}

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" at the message's start. */
static __always_inline int h2_preface(struct sk_msg_md *msg, __u32 size)
{
	if (size < 24 || bpf_msg_pull_data(msg, 0, 24, 0))
		return 0;
	void *d = msg->data, *end = msg->data_end;
	if (d + 24 > end)
		return 0;
	__u64 a, b, c;
	__builtin_memcpy(&a, d, 8);
	__builtin_memcpy(&b, d + 8, 8);
	__builtin_memcpy(&c, d + 16, 8);
	return a == 0x5448202a20495250ULL && b == 0x0a0d302e322f5054ULL && c == 0x0a0d0a0d4d530a0dULL;
}

static __always_inline void h2_record(struct h2_sock *st, __u32 at, __u32 len, __u32 sid, __u8 flags, __u8 whole)
{
	__u8 n = st->nh;
	if (n >= H2_REC) {
		if (st->over < 255)
			st->over++;
		return;
	}
	struct h2_hf *f = &st->hf[n & (H2_REC - 1)];
	f->at = at;
	f->len = len;
	f->sid = sid;
	f->flags = flags;
	f->whole = whole;
	st->nh = n + 1;
}

/* Copies the write's last `avail` (< 9) bytes from pos into st->hbuf[have..]. */
static __always_inline int h2_keep_tail(struct sk_msg_md *msg, struct h2_sock *st, __u32 pos, __u32 avail, __u32 have)
{
	if (bpf_msg_pull_data(msg, pos, pos + avail, 0))
		return -1;
	void *d = msg->data, *end = msg->data_end;
#pragma unroll
	for (int j = 0; j < 8; j++) {
		if (j >= avail)
			break;
		if (d + j + 1 > end)
			return -1;
		st->hbuf[(have + j) & 15] = *(__u8 *)(d + j);
	}
	st->hlen = have + avail;
	return 0;
}

/*
 * Walks this write's frames (original bytes; at most H2C_PROP_MAX_FRAMES
 * headers in it) and leaves the socket's state at the write's end; records
 * the request HEADERS frames met (odd stream ids) in st->hf. Returns -1 when
 * the frames could not all be followed.
 */
static __always_inline int h2_walk(struct sk_msg_md *msg, __u32 size, struct h2_sock *st, __u32 pos)
{
	st->nh = 0;
	st->over = 0;
	if (st->skip) {
		__u32 left = size - pos;
		if (st->skip >= left) {
			st->skip -= left;
			return 0;
		}
		pos += st->skip;
		st->skip = 0;
	}
	__u32 have = st->hlen;
	if (have) {
		/* A frame header begun in the last write. */
		if (have > 8)
			return -1;
		__u32 need = 9 - have;
		if (size - pos < need)
			return h2_keep_tail(msg, st, pos, size - pos, have);
		if (h2_keep_tail(msg, st, pos, need, have))
			return -1;
		st->hlen = 0;
		__u8 *h = st->hbuf;
		__u32 len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
		__u32 sid = (((__u32)h[5] & 0x7f) << 24) | ((__u32)h[6] << 16) | ((__u32)h[7] << 8) | h[8];
		if (h[3] == 1 && (sid & 1))
			h2_record(st, 0, len, sid, h[4], 0);
		pos += need;
		if (len >= size - pos) {
			st->skip = len - (size - pos);
			return 0;
		}
		pos += len;
	}
	for (int i = 0; i < H2C_PROP_MAX_FRAMES; i++) {
		if (pos >= size)
			return 0;
		__u32 avail = size - pos;
		if (avail < 9)
			return h2_keep_tail(msg, st, pos, avail, 0);
		if (bpf_msg_pull_data(msg, pos, pos + 9, 0))
			return -1;
		__u8 *d = msg->data;
		void *end = msg->data_end;
		if ((void *)(d + 9) > end)
			return -1;
		__u32 len = ((__u32)d[0] << 16) | ((__u32)d[1] << 8) | d[2];
		__u32 sid = (((__u32)d[5] & 0x7f) << 24) | ((__u32)d[6] << 16) | ((__u32)d[7] << 8) | d[8];
		if (d[3] == 1 && (sid & 1))
			h2_record(st, pos, len, sid, d[4], 9 + len <= avail);
		if (9 + len >= avail) {
			st->skip = 9 + len - avail;
			return 0;
		}
		pos += 9 + len;
	}
	return -1;
}

/* Decides for one recorded HEADERS frame; the entry is used up either way. */
static __always_inline void h2_decide(struct h2_sock *st, int k, struct h2c_propagation_event *ev)
{
	struct h2_cand *cand = &st->cand[k & (H2_REC - 1)];
	cand->ok = 0;
	struct h2_hf f = st->hf[k & (H2_REC - 1)];
	struct prop_h2_key key = { .pid = ev->hdr.pid, .stream_id = f.sid };
	struct prop_h2_out *o = bpf_map_lookup_elem(&prop_h2_out, &key);
	if (!o) {
		__u8 zero8[8] = {};
		h2_event(ev, f.sid, zero8, H2C_PROP_NO_ENTRY);
		return;
	}
	__u8 out = 0;
	if (ev->hdr.ts_ns - o->ts_ns > PROP_H2_MAX_NS)
		out = H2C_PROP_STALE;
	else if (o->state == PROP_H2_NO_CTX)
		out = H2C_PROP_NO_CONTEXT;
	else if (o->state == PROP_H2_PRESENT)
		out = H2C_PROP_PRESENT;
	else if (o->state != PROP_H2_OK)
		out = H2C_PROP_AMBIGUOUS;
	else if (!f.whole)
		out = H2C_PROP_SPLIT;
	else if (!(f.flags & 0x4))	/* END_HEADERS */
		out = H2C_PROP_CONTINUATION;
	else if (f.flags & 0x8)		/* PADDED */
		out = H2C_PROP_PADDED;
	else if (f.len + H2C_PROP_FIELD > 16384)
		out = H2C_PROP_TOO_LARGE;
	if (out) {
		h2_event(ev, f.sid, o->span_id, out);
	} else {
		cand->ok = 1;
		cand->at = f.at;
		cand->len = f.len;
		cand->sid = f.sid;
		__builtin_memcpy(&cand->o, o, sizeof(cand->o));
	}
	bpf_map_delete_elem(&prop_h2_out, &key);
}

/*
 * Appends the traceparent field (and, when the server span's request had
 * one, a tracestate field) to the chosen frame's header block and grows its
 * length; on any failure the message is as it was.
 *
 * tracestate: HPACK literal without indexing, new name, no Huffman:
 * 0x00, 10, "tracestate", the value's length as an HPACK integer with a
 * 7-bit prefix (1 byte below 127, else 0x7f and 1..2 more), the value
 * (1..PROP_TS_MAX printable bytes, as the server parse probe filed it).
 * Left out (the traceparent goes alone, counted in ev->state) when the
 * request has its own tracestate, when the span's entry was evicted, or
 * when the frame would grow past 16384 bytes with it.
 */
static __always_inline __u8 h2_insert(struct sk_msg_md *msg, struct h2_cand *cand, struct h2c_propagation_event *ev)
{
	__u32 fe = cand->at + 9 + cand->len;
	struct prop_tracestate *ts = 0;
	__u32 tslen = 0, tsint = 0, tsf = 0;
	ev->state = H2C_STATE_NONE;
	if (cand->o.ctx.has_state) {
		if (cand->o.own_ts) {
			ev->state = H2C_STATE_PRESENT;
		} else {
			struct prop_span_key sk = { .pid = ev->hdr.pid, .span = prop_word(cand->o.ctx.span_id) };
			ts = bpf_map_lookup_elem(&prop_span_state, &sk);
			if (!ts || ts->len == 0 || ts->len > PROP_TS_MAX) {
				ts = 0;
				ev->state = H2C_STATE_LOST;
			} else {
				tslen = ts->len & (PROP_TS_MAX * 2 - 1);
				if (tslen > PROP_TS_MAX)
					tslen = PROP_TS_MAX;
				tsint = tslen < 127 ? 1 : tslen - 127 < 128 ? 2 : 3;
				tsf = 12 + tsint + tslen;
				if (cand->len + H2C_PROP_FIELD + tsf > 16384) {
					ts = 0;
					tsf = 0;
					ev->state = H2C_STATE_TOO_LARGE;
				}
			}
		}
	}
	__u32 total = H2C_PROP_FIELD + tsf;
	if (bpf_msg_push_data(msg, fe, total, 0)) {
		ev->state = H2C_STATE_NONE;
		return H2C_PROP_PUSH_FAILED;
	}
	if (bpf_msg_pull_data(msg, fe, fe + total, 0))
		goto undo;
	void *d = msg->data, *end = msg->data_end;
	if (d + H2C_PROP_FIELD > end)
		goto undo;
	/* 0x00: literal header field without indexing, new name; 11: name length, no Huffman; 55: value length */
	__u8 *f = d;
	f[0] = 0x00;
	f[1] = 11;
	__u64 a = 0x7261706563617274ULL; /* "tracepar" */
	__builtin_memcpy(f + 2, &a, 8);
	f[10] = 'e'; f[11] = 'n'; f[12] = 't';
	f[13] = 55;
	f[14] = '0'; f[15] = '0'; f[16] = '-';
	hex_into(f + 17, cand->o.ctx.trace_id, 16);
	f[49] = '-';
	hex_into(f + 50, cand->o.span_id, 8);
	f[66] = '-';
	hex_into(f + 67, &cand->o.ctx.flags, 1);
	if (ts) {
		__u8 *p = f + H2C_PROP_FIELD;
		if ((void *)(p + 15) > end)
			goto undo;
		p[0] = 0x00;
		p[1] = 10;
		__u64 ta = 0x6174736563617274ULL;	/* "tracesta" */
		__builtin_memcpy(p + 2, &ta, 8);
		p[10] = 't';
		p[11] = 'e';
		if (tsint == 1) {
			p[12] = (__u8)tslen;
		} else if (tsint == 2) {
			p[12] = 0x7f;
			p[13] = (__u8)(tslen - 127);
		} else {
			p[12] = 0x7f;
			p[13] = (__u8)(((tslen - 127) & 0x7f) | 0x80);
			p[14] = (__u8)((tslen - 127) >> 7);
		}
		p += 12 + tsint;
		for (__u32 i = 0; i < PROP_TS_MAX; i++) {
			if (i >= tslen)
				break;
			if ((void *)(p + i + 1) > end)
				goto undo;
			p[i] = ts->v[i];
		}
		ev->state = H2C_STATE_INJECTED;
	}
	if (bpf_msg_pull_data(msg, cand->at, cand->at + 3, 0))
		goto undo;
	d = msg->data;
	end = msg->data_end;
	if (d + 3 > end)
		goto undo;
	__u32 nl = cand->len + total;
	((__u8 *)d)[0] = (__u8)(nl >> 16);
	((__u8 *)d)[1] = (__u8)(nl >> 8);
	((__u8 *)d)[2] = (__u8)nl;
	__builtin_memcpy(ev->trace_id, cand->o.ctx.trace_id, 16);
	__builtin_memcpy(ev->parent_id, cand->o.ctx.span_id, 8);
	ev->flags = cand->o.ctx.flags;
	return H2C_PROP_INJECTED;
undo:
	bpf_msg_pop_data(msg, fe, total, 0);
	ev->state = H2C_STATE_NONE;
	return H2C_PROP_PUSH_FAILED;
}

/* One write on a socket in h2c mode (or new). */
static __always_inline int h2_msg(struct sk_msg_md *msg, struct h2_sock *st)
{
	__u64 me = bpf_get_current_pid_tgid();
	struct h2c_propagation_event ev = {};
	ev.hdr.kind = EV_H2_CLIENT_PROPAGATION;
	ev.hdr.pid = me >> 32;
	ev.hdr.tid = (__u32)me;
	ev.hdr.cpu = (__u16)bpf_get_smp_processor_id();
	ev.hdr.ts_ns = bpf_ktime_get_ns();
	ev.msg_size = msg->size;
	__u32 pos = 0;
	if (st->mode == H2S_NEW) {
		if (!h2_preface(msg, ev.msg_size)) {
			st->mode = H2S_OTHER;
			return 0;
		}
		st->mode = H2S_SYNC;
		pos = 24;
	}
	if (st->mode != H2S_SYNC)
		return 0;
	if (h2_walk(msg, ev.msg_size, st, pos)) {
		st->mode = H2S_LOST;
		__u8 zero8[8] = {};
		h2_event(&ev, 0, zero8, H2C_PROP_LOST_SYNC);
		return 0;
	}
	if (!st->nh)
		return 0;
#pragma unroll
	for (int k = 0; k < H2_REC; k++) {
		st->cand[k].ok = 0;
		if (k < st->nh)
			h2_decide(st, k, &ev);
	}
	/* Frames beyond the H2_REC looked at: unchanged, each counted (their entries expire). */
	__u8 zero8[8] = {};
	for (int i = 0; i < 255; i++) {
		if (i >= st->over)
			break;
		h2_event(&ev, 0, zero8, H2C_PROP_MULTI);
	}
	/* The later frames first: an insertion moves only what follows it. */
#pragma unroll
	for (int k = H2_REC - 1; k >= 0; k--) {
		if (!st->cand[k].ok)
			continue;
		__u8 out = h2_insert(msg, &st->cand[k], &ev);
		h2_event(&ev, st->cand[k].sid, st->cand[k].o.span_id, out);
	}
	return 0;
}

/* Decides, and inserts when it may. Returns the outcome. */
static __always_inline __u8 propagate(struct sk_msg_md *msg, __u32 pid, struct h1c_propagation_event *ev)
{
	__u32 size = msg->size;
	__u32 want = size < H1C_PROP_SCAN ? size : H1C_PROP_SCAN;
	if (want < 16)
		return H1C_PROP_NOT_PLAINTEXT;
	if (bpf_msg_pull_data(msg, 0, want, 0))
		return H1C_PROP_PUSH_FAILED;
	void *data = msg->data;
	void *end = msg->data_end;
	if (data + 16 > end)
		return H1C_PROP_NOT_PLAINTEXT;
	__u32 zero = 0;
	struct prop_scratch *sc = bpf_map_lookup_elem(&prop_scratch, &zero);
	if (!sc)
		return H1C_PROP_PUSH_FAILED;
	if (__sync_lock_test_and_set(&sc->busy, 1))
		return H1C_PROP_PUSH_FAILED;
	__u8 out = H1C_PROP_PUSH_FAILED;
	__u32 n = want & (H1C_PROP_SCAN * 2 - 1);
	if (n > H1C_PROP_SCAN)
		n = H1C_PROP_SCAN;
	if (bpf_probe_read_kernel(sc->b, n, data))
		goto done;
	sc->n = n;
	struct line_scan ls = { .sc = sc, .hash = PROP_FNV_INIT };
	bpf_loop(n, scan_request_line, &ls, 0);
	if (ls.bad || !ls.target) {
		out = H1C_PROP_NOT_PLAINTEXT;
		goto done;
	}
	__u32 j = ls.target_end;
	if (!j || j + 11 > n) {
		out = H1C_PROP_SPLIT_HEAD;
		goto done;
	}
	j &= H1C_PROP_SCAN - 1;
	if (j + 11 > H1C_PROP_SCAN)
		goto done;
	/* " HTTP/1.x\r\n" */
	if (sc->b[j + 1] != 'H' || sc->b[j + 2] != 'T' || sc->b[j + 3] != 'T' || sc->b[j + 4] != 'P' || sc->b[j + 5] != '/' ||
	    sc->b[j + 6] != '1' || sc->b[j + 7] != '.' || sc->b[j + 9] != '\r' || sc->b[j + 10] != '\n') {
		out = H1C_PROP_NOT_PLAINTEXT;
		goto done;
	}
	ls.from = j + 10;
	bpf_loop(n, scan_headers, &ls, 0);
	if (ls.present) {
		out = H1C_PROP_PRESENT;
		goto done;
	}
	if (!ls.head_end) {
		out = H1C_PROP_SPLIT_HEAD;
		goto done;
	}
	out = 0;
done:
	sc->busy = 0;
	if (out)
		return out;
	__u32 line_end = j + 11;
	__u32 tlen = ls.target_end - ls.target;
	__u64 h = ls.hash;

	/* Whose request is this? The reqwest call waiting for this target. */
	struct prop_call_key ck = { .pid = pid, .len = tlen, .hash = h };
	struct prop_call *c = bpf_map_lookup_elem(&prop_calls, &ck);
	if (!c)
		return H1C_PROP_NO_CONTEXT;
	__u64 before = __sync_fetch_and_add(&c->pending, -1);
	if (before == 0) {
		__sync_fetch_and_add(&c->pending, 1);
		return H1C_PROP_NO_CONTEXT;
	}
	__u64 owner = c->owner;
	if (before == 1)	/* the last waiting call: release the target */
		__sync_val_compare_and_swap(&c->owner, owner, 0);
	c->last_ns = ev->hdr.ts_ns;
	if (owner == PROP_AMBIGUOUS || owner == 0)
		return H1C_PROP_AMBIGUOUS;
	if (owner == PROP_NO_CTX)
		return H1C_PROP_NO_CONTEXT;
	struct prop_span_key sk = { .pid = pid, .span = owner };
	struct prop_ids *ctx = bpf_map_lookup_elem(&prop_span_ctx, &sk);
	if (!ctx)
		return H1C_PROP_NO_CONTEXT;

	/* The incoming tracestate of that span, when it had one. */
	struct prop_tracestate *ts = 0;
	if (ctx->has_state) {
		if (ls.state_present) {
			ev->state = H1C_STATE_PRESENT;
		} else {
			ts = bpf_map_lookup_elem(&prop_span_state, &sk);
			if (!ts || ts->len == 0 || ts->len > PROP_TS_MAX) {
				ts = 0;
				ev->state = H1C_STATE_LOST;
			}
		}
	}
	__u32 tslen = ts ? ts->len & (PROP_TS_MAX * 2 - 1) : 0;
	if (tslen > PROP_TS_MAX)
		tslen = PROP_TS_MAX;
	/* "tracestate: " + value + CRLF */
	__u32 total = H1C_PROP_LINE + (ts ? 12 + tslen + 2 : 0);

	__u8 line[H1C_PROP_LINE];
	/* "traceparent: 00-" */
	__u64 a = 0x7261706563617274ULL, b = 0x2d3030203a746e65ULL;
	__builtin_memcpy(line, &a, 8);
	__builtin_memcpy(line + 8, &b, 8);
	hex_into(line + 16, ctx->trace_id, 16);
	line[48] = '-';
	hex_into(line + 49, ev->span_id, 8);
	line[65] = '-';
	hex_into(line + 66, &ctx->flags, 1);
	line[68] = '\r';
	line[69] = '\n';

	if (bpf_msg_push_data(msg, line_end, total, 0)) {
		ev->state = H1C_STATE_NONE;
		return H1C_PROP_PUSH_FAILED;
	}
	if (bpf_msg_pull_data(msg, line_end, line_end + total, 0))
		goto undo;
	data = msg->data;
	end = msg->data_end;
	if (data + H1C_PROP_LINE > end)
		goto undo;
	__builtin_memcpy(data, line, H1C_PROP_LINE);
	if (ts) {
		__u8 *p = (__u8 *)data + H1C_PROP_LINE;
		if ((void *)(p + 12) > end)
			goto undo;
		/* "tracestate: " */
		__u64 ta = 0x6174736563617274ULL;	/* "tracesta" */
		__u32 tb = 0x203a6574;			/* "te: " */
		__builtin_memcpy(p, &ta, 8);
		__builtin_memcpy(p + 8, &tb, 4);
		p += 12;
		for (__u32 i = 0; i < PROP_TS_MAX; i++) {
			if (i >= tslen)
				break;
			if ((void *)(p + i + 1) > end)
				goto undo;
			p[i] = ts->v[i];
		}
		__u8 *t = p + tslen;
		if ((void *)(t + 2) > end)
			goto undo;
		t[0] = '\r';
		t[1] = '\n';
		ev->state = H1C_STATE_INJECTED;
	}
	__builtin_memcpy(ev->trace_id, ctx->trace_id, 16);
	__builtin_memcpy(ev->parent_id, ctx->span_id, 8);
	ev->flags = ctx->flags;
	return H1C_PROP_INJECTED;
undo:
	bpf_msg_pop_data(msg, line_end, total, 0);
	ev->state = H1C_STATE_NONE;
	return H1C_PROP_PUSH_FAILED;
}

SEC("sk_msg")
int prop_sk_msg(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	if (sk) {
		struct h2_sock *st = bpf_sk_storage_get(&prop_h2_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (st && st->mode != H2S_OTHER) {
			h2_msg(msg, st);
			if (st->mode != H2S_OTHER)
				return SK_PASS;
		}
	}
	__u64 me = bpf_get_current_pid_tgid();
	struct prop_outgoing *o = bpf_map_lookup_elem(&prop_outgoing, &me);
	if (!o)
		return SK_PASS;
	struct h1c_propagation_event ev = {};
	ev.hdr.kind = EV_H1_CLIENT_PROPAGATION;
	ev.hdr.pid = me >> 32;
	ev.hdr.tid = (__u32)me;
	ev.hdr.cpu = (__u16)bpf_get_smp_processor_id();
	ev.hdr.ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(ev.span_id, o->span_id, 8);
	__u64 made = o->ts_ns;
	/* One write per encoded head: the first one after encode. */
	bpf_map_delete_elem(&prop_outgoing, &me);
	ev.msg_size = msg->size;
	if (ev.hdr.ts_ns - made > PROP_OUTGOING_MAX_NS)
		ev.outcome = H1C_PROP_STALE;
	else
		ev.outcome = propagate(msg, ev.hdr.pid, &ev);
	bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_NO_WAKEUP);
	return SK_PASS;
}

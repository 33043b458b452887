/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The BPF-side trace context store: what outgoing W3C propagation needs to
 * know *at send time*, in the kernel, before the agent has read any event.
 *
 * Included by the probes that make the ids (hyper-h1-server: server span ids
 * at parse; hyper-h1-client: client span id at encode, the caller's context
 * at reqwest's execute_request) and by the socket programs that insert the
 * header (propagation.bpf.c). The maps are declared in every object that
 * includes this file; the loader shares them by name (one map for all).
 *
 * Why ids are made here: the span ids the agent exports must be the ones that
 * went on the wire, and the wire write happens microseconds after the probe,
 * long before user space drains the ring. So the probe makes the ids, puts
 * them in its event (user space uses exactly those) and in these maps.
 */
#ifndef OTEL_RUST_AGENT_PROPAGATION_CONTEXT_H
#define OTEL_RUST_AGENT_PROPAGATION_CONTEXT_H

/* A span's W3C context. trace_id/span_id are the id bytes in wire order
 * (byte 0 = the first two hex digits). */
struct prop_ids {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;		/* W3C trace-flags */
	__u8 remote;		/* trace id taken from an incoming traceparent */
	__u8 has_state;		/* the incoming request's tracestate is in prop_span_state */
	__u8 _pad[5];
};

struct prop_task_key {
	__u32 pid;
	__u32 _pad;
	__u64 task;		/* tokio task id */
};

/* (pid, tokio task) -> the server span the task is handling now: written by
 * the server parse probe (hyper-h1-server), read where that task makes a
 * client call (reqwest's execute_request). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct prop_task_key);
	__type(value, struct prop_ids);
} prop_server_ctx SEC(".maps");

struct prop_span_key {
	__u32 pid;
	__u32 _pad;
	__u64 span;		/* the span id's 8 bytes as one word */
};

/* (pid, server span id) -> its context; immutable once written, so a reader
 * holding a span id never sees a half-written context. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct prop_span_key);
	__type(value, struct prop_ids);
} prop_span_ctx SEC(".maps");

/*
 * (pid, server span id) -> the incoming request's tracestate value, exactly
 * as it arrived (OWS around it trimmed), for the outgoing requests of that
 * span. Written with the span's prop_span_ctx entry when the head carried one
 * valid traceparent and exactly one tracestate header of 1..PROP_TS_MAX
 * printable bytes; immutable after. Fewer entries than prop_span_ctx (each is
 * 520 bytes, preallocated): a span whose entry was evicted sends its
 * traceparent alone, counted (H1C_PROP_STATE_LOST).
 */
#define PROP_TS_MAX 512
struct prop_tracestate {
	__u32 len;
	__u32 _pad;
	__u8 v[PROP_TS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct prop_span_key);
	__type(value, struct prop_tracestate);
} prop_span_state SEC(".maps");

/* Where the tracestate is built before it is filed (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prop_tracestate);
} prop_state_scratch SEC(".maps");

/*
 * reqwest calls waiting for their request to reach the wire, by request
 * target (path and query as hyper writes it in the request line; FNV-1a of
 * the bytes and their length). reqwest hands the request to hyper's
 * connection task through a channel, and no pointer seen at execute_request
 * survives into hyper's encode (reqwest clones the HeaderMap and builds a new
 * Uri after that entry), so the request line is the key that joins them.
 *
 * `owner` is the server span id of every waiting call (PROP_NO_CTX: calls made
 * outside any server span; PROP_AMBIGUOUS: calls from two different spans wait
 * for the same target, and which wire request is whose cannot be known: those
 * go out unchanged). Only atomics touch a value after it is created.
 */
struct prop_call_key {
	__u32 pid;
	__u32 len;
	__u64 hash;
};

struct prop_call {
	__u64 owner;
	__u64 pending;
	__u64 last_ns;		/* last registration or consumption */
};

#define PROP_NO_CTX	1ULL
#define PROP_AMBIGUOUS	(~0ULL)
/* A key nobody touched for this long is reset by the next call: calls that
 * never reached the wire (connect failed, cancelled) must not keep it
 * ambiguous forever. */
#define PROP_CALL_STALE_NS (30ULL * 1000000000ULL)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct prop_call_key);
	__type(value, struct prop_call);
} prop_calls SEC(".maps");

/*
 * reqwest calls filed by execute_request whose hyper-util / hyper 0.14 Client
 * has not yet reached origin_form (hyper-h1-client's hyper_origin_form), by
 * (pid, caller task, target): origin_form files every other request itself
 * (hyper's client used directly), and must not file a reqwest call twice
 * (a second pending count would keep the target claimed). An entry older
 * than PROP_CALL_STALE_NS is not used.
 */
struct prop_rq_key {
	__u32 pid;
	__u32 len;
	__u64 hash;
	__u64 task;
};

struct prop_rq_open {
	__u64 count;
	__u64 ts_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct prop_rq_key);
	__type(value, struct prop_rq_open);
} prop_rq_open SEC(".maps");

/*
 * Thread -> the client request hyper's encode is writing right now: its
 * BPF-made span id. hyper's dispatcher flushes the head it just encoded in
 * the same poll, on the same thread, so the socket program finds it under its
 * own pid_tgid; it consumes the entry on the first write it sees.
 */
struct prop_outgoing {
	__u8 span_id[8];
	__u64 ts_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct prop_outgoing);
} prop_outgoing SEC(".maps");

/* FNV-1a */
#define PROP_FNV_INIT 0xcbf29ce484222325ULL
#define PROP_FNV_PRIME 0x100000001b3ULL

static __always_inline void prop_random(__u8 *dst, const int n)
{
#pragma unroll
	for (int i = 0; i < n; i += 4) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(dst + i, &r, 4);
	}
}

static __always_inline __u64 prop_word(const __u8 *b)
{
	__u64 w;
	__builtin_memcpy(&w, b, 8);
	return w;
}

/* A span id that is not all zero and is neither marker value. */
static __always_inline void prop_new_span_id(__u8 *dst)
{
	prop_random(dst, 8);
	__u64 w = prop_word(dst);
	if (w == 0 || w == PROP_NO_CTX || w == PROP_AMBIGUOUS)
		dst[0] = 0x5a, dst[7] = 0xa5;
}

static __always_inline void prop_new_trace_id(__u8 *dst)
{
	prop_random(dst, 16);
	if (prop_word(dst) == 0 && prop_word(dst + 8) == 0)
		dst[15] = 1;
}

/*
 * Lineage (issue 8e): tasks spawned and threads created while a server span
 * is being handled carry that span to their outgoing calls, as the agent's
 * user-space lineage does (src/spans/context.ts), by the same rules:
 *   - a task spawned (tokio::spawn, nested; spawn_blocking) by a task that is
 *     handling a server span, or that carries one, carries it too (written
 *     at the tokio-spawn probe, which reads the child's id);
 *   - a thread created (sched_process_fork) by such a task, or by a thread
 *     that carries one while it runs no task, carries it; a thread's link is
 *     used only where it runs no tokio task (task id 0);
 *   - only while the span is open: a link names the server task (the root
 *     of the lineage) and the span, and is good only while that task's
 *     prop_server_ctx entry is still that span. The server's response probe
 *     deletes the entry (prop_server_done) and the next request's parse
 *     replaces it, so a worker started in one request and serving later
 *     ones gets no context for them (a wrong traceparent is worse than none).
 * Task ids are never reused. Thread ids are: a thread link holds the
 * thread's start time and is used only by the thread that started then;
 * each new thread of a linked process overwrites or deletes its tid's link.
 * Links of a closed span are deleted where a lookup finds them closed; the
 * map is an LRU, and the agent deletes a process's links when it exits.
 */
#define PROP_LINK_TASK	 1
#define PROP_LINK_THREAD 2

struct prop_link_key {
	__u32 pid;
	__u32 kind;		/* PROP_LINK_* */
	__u64 id;		/* tokio task id, or thread id */
};

struct prop_link {
	__u64 root_task;	/* the server task: prop_server_ctx[(pid, root_task)] */
	__u64 span;		/* the server span id word it must still hold */
	__u64 start_ns;		/* threads: task_struct.start_time of the thread */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct prop_link_key);
	__type(value, struct prop_link);
} prop_links SEC(".maps");

/* Counters of the lineage (summed over CPUs by the agent: stats
 * `propagation.links`). */
enum prop_link_counter {
	PROP_LC_TASK_LINKS,	/* spawned tasks that got a link */
	PROP_LC_THREAD_LINKS,	/* threads that got a link */
	PROP_LC_THREAD_UNLINKED,/* new threads with nothing to inherit whose tid had a link: deleted */
	PROP_LC_BY_TASK,	/* calls filed with a span through a task link */
	PROP_LC_BY_THREAD,	/* calls filed with a span through a thread link */
	PROP_LC_CLOSED,		/* links found with their span closed: not used, deleted */
	PROP_LC_REUSED_TID,	/* thread links of another thread with the same tid: not used */
	PROP_LC_SERVER_DONE,	/* server spans whose task entry the response deleted */
	PROP_LC_N,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64[PROP_LC_N]);
} prop_link_stats SEC(".maps");

static __always_inline void prop_count(const int which)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&prop_link_stats, &zero);
	if (c && which >= 0 && which < PROP_LC_N)
		c[which]++;	/* per-CPU: no atomics needed */
}

static __always_inline __u64 prop_current_start_ns(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	return BPF_CORE_READ(t, start_time);
}

/*
 * The server span the code running now works for: in a task, the span it
 * handles (prop_server_ctx) or the one its link carries; outside any task
 * (task 0), the one the thread's link carries. 1 and *out filled (root task,
 * span word), or 0. `via` gets the link kind used (0: the task's own entry).
 */
static __always_inline int prop_lineage_of(__u32 pid, __u64 task, __u32 tid, struct prop_link *out, __u32 *via)
{
	struct prop_link_key lk = { .pid = pid };
	if (task) {
		struct prop_task_key tk = { .pid = pid, .task = task };
		struct prop_ids *sc = bpf_map_lookup_elem(&prop_server_ctx, &tk);
		if (sc) {
			out->root_task = task;
			out->span = prop_word(sc->span_id);
			out->start_ns = 0;
			*via = 0;
			return 1;
		}
		lk.kind = PROP_LINK_TASK;
		lk.id = task;
	} else {
		if (!tid)
			return 0;
		lk.kind = PROP_LINK_THREAD;
		lk.id = tid;
	}
	struct prop_link *l = bpf_map_lookup_elem(&prop_links, &lk);
	if (!l)
		return 0;
	struct prop_link got = *l;
	if (lk.kind == PROP_LINK_THREAD && got.start_ns != prop_current_start_ns()) {
		prop_count(PROP_LC_REUSED_TID);
		return 0;
	}
	struct prop_task_key rk = { .pid = pid, .task = got.root_task };
	struct prop_ids *root = bpf_map_lookup_elem(&prop_server_ctx, &rk);
	if (!root || prop_word(root->span_id) != got.span) {
		prop_count(PROP_LC_CLOSED);
		bpf_map_delete_elem(&prop_links, &lk);
		return 0;
	}
	*out = got;
	*via = lk.kind;
	return 1;
}

/*
 * The owner word a call made now is filed with (prop_calls): the span id of
 * the server span it works for, or PROP_NO_CTX.
 */
static __always_inline __u64 prop_owner_of(__u32 pid, __u64 task, __u32 tid)
{
	struct prop_link l = {};
	__u32 via = 0;
	if (!prop_lineage_of(pid, task, tid, &l, &via))
		return PROP_NO_CTX;
	if (via == PROP_LINK_TASK)
		prop_count(PROP_LC_BY_TASK);
	else if (via == PROP_LINK_THREAD)
		prop_count(PROP_LC_BY_THREAD);
	return l.span;
}

/* A task was spawned (tokio-spawn probe, in the spawning task): the child
 * carries the parent's span, if it has an open one. */
static __always_inline void prop_link_task(__u32 pid, __u64 parent, __u64 child)
{
	struct prop_link l = {};
	__u32 via = 0;
	if (!parent || !child || !prop_lineage_of(pid, parent, 0, &l, &via))
		return;
	struct prop_link_key ck = { .pid = pid, .kind = PROP_LINK_TASK, .id = child };
	l.start_ns = 0;
	if (bpf_map_update_elem(&prop_links, &ck, &l, BPF_ANY) == 0)
		prop_count(PROP_LC_TASK_LINKS);
}

/* A thread was created (sched_process_fork, in the creating thread, which
 * runs `task` or none): the new thread carries the creator's open span, or
 * its tid's old link is deleted. */
static __always_inline void prop_link_thread(__u32 pid, __u64 task, __u32 creator_tid, __u32 child_tid, __u64 child_start_ns)
{
	struct prop_link l = {};
	__u32 via = 0;
	struct prop_link_key ck = { .pid = pid, .kind = PROP_LINK_THREAD, .id = child_tid };
	if (!prop_lineage_of(pid, task, creator_tid, &l, &via)) {
		if (bpf_map_delete_elem(&prop_links, &ck) == 0)
			prop_count(PROP_LC_THREAD_UNLINKED);
		return;
	}
	l.start_ns = child_start_ns;
	if (bpf_map_update_elem(&prop_links, &ck, &l, BPF_ANY) == 0)
		prop_count(PROP_LC_THREAD_LINKS);
}

/* The server task answered its request (response probe, in that task): the
 * span is closed for everything linked to it. */
static __always_inline void prop_server_done(__u32 pid, __u64 task)
{
	if (!task)
		return;
	struct prop_task_key tk = { .pid = pid, .task = task };
	if (bpf_map_delete_elem(&prop_server_ctx, &tk) == 0)
		prop_count(PROP_LC_SERVER_DONE);
}

static __always_inline int prop_hex(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}


/*
 * An incoming traceparent in a request head held in BPF-readable memory
 * (head[0..n), n <= cap, cap a constant): the offset of its value, or -1.
 * The header name matches in any case at a line start; one optional space or
 * tab follows the colon. Only the offset is searched here so the loop stays
 * small for the verifier; prop_parse_traceparent decodes it.
 */
#define PROP_TP_VALUE 55

struct prop_tp_scan {
	const __u8 *head;	/* ring memory of at least `cap` bytes */
	__u32 n;
	int found;
};

/* One position of the search; bpf_loop verifies this once, not per byte.
 * One callback per ring record size (the verifier must see the bound). */
#define PROP_TP_SCAN_CB(CAP)								\
static long prop_tp_scan_##CAP(__u64 i, struct prop_tp_scan *s)			\
{											\
	__u32 k = (__u32)i & (CAP - 1);							\
	if (k + 14 + PROP_TP_VALUE > s->n)						\
		return 1;								\
	if (k < 1 || k + 14 + PROP_TP_VALUE + 2 > CAP)					\
		return 0;								\
	const __u8 *h = s->head;							\
	__u64 x;									\
	__u32 y;									\
	__builtin_memcpy(&x, h + k - 1, 8);						\
	/* The head ends at CRLF CRLF: what follows is a body or the next	\
	 * pipelined request (its traceparent is not this request's). */		\
	if ((__u32)x == 0x0a0d0a0dU)							\
		return 1;								\
	if ((x | 0x2020202020202000ULL) != 0x617065636172740aULL) /* "\ntracepa" */	\
		return 0;								\
	__builtin_memcpy(&y, h + k + 7, 4);						\
	if ((y | 0x20202020) != 0x746e6572 || h[k + 11] != ':')	/* "rent:" */	\
		return 0;								\
	s->found = (h[k + 12] == ' ' || h[k + 12] == '\t') ? (int)(k + 13) : (int)(k + 12); \
	return 1;									\
}
PROP_TP_SCAN_CB(2048)
PROP_TP_SCAN_CB(512)

/*
 * The offset of an incoming traceparent's value in a request head held in
 * ring memory (head[0..n), n <= cap, the memory cap bytes long, cap 512 or 2048), or -1.
 * The header name matches in any case at a line start; one optional space or
 * tab follows the colon.
 */
static __always_inline int prop_find_traceparent(const __u8 *head, __u32 n, const __u32 cap)
{
	struct prop_tp_scan s = { .head = head, .n = n, .found = -1 };
	if (n < 16 + 14 + PROP_TP_VALUE)
		return -1;
	bpf_loop(n, cap == 2048 ? (void *)prop_tp_scan_2048 : (void *)prop_tp_scan_512, &s, 0);
	return s.found;
}

/*
 * The incoming tracestate (src/propagation/README.md): the value of the one
 * "tracestate:" header of a head in ring memory, copied into `out`. Returns
 * 0 when there is exactly one such header and its value (OWS trimmed) is
 * 1..PROP_TS_MAX bytes of 0x20..0x7e or tab, ended by CRLF inside the head;
 * -1 otherwise (none, two headers, too long, a bare LF, cut off).
 */
struct prop_ts_scan {
	const __u8 *head;
	__u32 n;
	__u32 count;		/* tracestate headers seen */
	int at;			/* offset of the first one's value (after the colon) */
};

#define PROP_TS_SCAN_CB(CAP)								\
static long prop_ts_scan_##CAP(__u64 i, struct prop_ts_scan *s)			\
{											\
	__u32 k = (__u32)i & (CAP - 1);							\
	if (k + 12 > s->n)								\
		return 1;								\
	if (k < 1 || k + 12 > CAP)							\
		return 0;								\
	const __u8 *h = s->head;							\
	__u64 x;									\
	__u32 y;									\
	__builtin_memcpy(&x, h + k - 1, 8);						\
	if ((__u32)x == 0x0a0d0a0dU)	/* the head's end (see prop_tp_scan) */	\
		return 1;								\
	if ((x | 0x2020202020202000ULL) != 0x747365636172740aULL) /* "\ntracest" */	\
		return 0;								\
	__builtin_memcpy(&y, h + k + 7, 4);						\
	if ((y | 0x20202020) != 0x3a657461)	/* "ate:" */				\
		return 0;								\
	if (s->count++ == 0)								\
		s->at = (int)(k + 11);							\
	return 0;									\
}
PROP_TS_SCAN_CB(2048)
PROP_TS_SCAN_CB(512)

struct prop_ts_copy {
	const __u8 *head;
	struct prop_tracestate *out;
	__u32 n;
	__u32 from;
	__u32 len;		/* bytes copied (leading OWS skipped) */
	__u32 done;		/* the CRLF that ends the value was found */
	__u32 bad;
};

#define PROP_TS_COPY_CB(CAP)								\
static long prop_ts_copy_##CAP(__u64 i, struct prop_ts_copy *c)			\
{											\
	__u32 k = (c->from + (__u32)i) & (CAP - 1);					\
	if (k + 1 >= c->n || k + 1 >= CAP) {						\
		c->bad = 1;	/* cut off: no CRLF inside the head */			\
		return 1;								\
	}										\
	__u8 ch = c->head[k];								\
	if (ch == '\r') {								\
		if (c->head[k + 1] != '\n')						\
			c->bad = 1;							\
		c->done = 1;								\
		return 1;								\
	}										\
	if ((ch < 0x20 && ch != '\t') || ch > 0x7e) {				\
		c->bad = 1;								\
		return 1;								\
	}										\
	if (c->len == 0 && (ch == ' ' || ch == '\t'))	/* leading OWS */		\
		return 0;								\
	if (c->len >= PROP_TS_MAX) {	/* too long (trailing OWS included) */	\
		c->bad = 1;								\
		return 1;								\
	}										\
	c->out->v[c->len & (PROP_TS_MAX - 1)] = ch;					\
	c->len++;									\
	return 0;									\
}
PROP_TS_COPY_CB(2048)
PROP_TS_COPY_CB(512)

static __always_inline int prop_read_tracestate(const __u8 *head, __u32 n, const __u32 cap, struct prop_tracestate *out)
{
	struct prop_ts_scan s = { .head = head, .n = n, .at = -1 };
	if (n < 16)
		return -1;
	bpf_loop(n, cap == 2048 ? (void *)prop_ts_scan_2048 : (void *)prop_ts_scan_512, &s, 0);
	if (s.count != 1 || s.at < 0)
		return -1;
	struct prop_ts_copy c = { .head = head, .out = out, .n = n, .from = (__u32)s.at };
	bpf_loop(cap, cap == 2048 ? (void *)prop_ts_copy_2048 : (void *)prop_ts_copy_512, &c, 0);
	if (c.bad || !c.done || c.len == 0)
		return -1;
	/* Trailing OWS trimmed (at most 8 bytes). */
	__u32 len = c.len;
	if (len > PROP_TS_MAX)
		return -1;
	for (int i = 0; i < 8 && len > 0; i++) {
		__u8 ch = out->v[(len - 1) & (PROP_TS_MAX - 1)];
		if (ch != ' ' && ch != '\t')
			break;
		len--;
	}
	if (len == 0 || len > PROP_TS_MAX)
		return -1;
	out->len = len;
	return 0;
}

/* Two hex digits -> a byte, or -1. */
static __always_inline int prop_hex2(const __u8 *b)
{
	int h = prop_hex(b[0]), l = prop_hex(b[1]);
	if (h < 0 || l < 0)
		return -1;
	return h * 16 + l;
}

/*
 * Decodes the traceparent value at v[0..PROP_TP_VALUE] (v[PROP_TP_VALUE] must
 * be readable: it ends the value) with the rules of the agent's own parser
 * (src/spans/tracecontext.ts): version not ff, version 00 exactly four
 * fields, lowercase hex, trace and parent id not all zero. 0 on success.
 * out gets the trace id and flags; *parent the caller's span id.
 */
static __always_inline int prop_parse_traceparent(const __u8 *v, struct prop_ids *out, __u8 *parent)
{
	int ver = prop_hex2(v);
	if (ver < 0 || ver == 0xff || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return -1;
	__u8 end = v[PROP_TP_VALUE];
	if (ver == 0 ? (end != '\r' && end != ' ' && end != '\t') : (end != '\r' && end != ' ' && end != '\t' && end != '-'))
		return -1;
	__u8 any_t = 0, any_p = 0;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		int b = prop_hex2(v + 3 + 2 * i);
		if (b < 0)
			return -1;
		out->trace_id[i] = (__u8)b;
		any_t |= (__u8)b;
	}
#pragma unroll
	for (int i = 0; i < 8; i++) {
		int b = prop_hex2(v + 36 + 2 * i);
		if (b < 0)
			return -1;
		parent[i] = (__u8)b;
		any_p |= (__u8)b;
	}
	int f = prop_hex2(v + 53);
	if (f < 0 || !any_t || !any_p)
		return -1;
	out->flags = (__u8)f;
	out->remote = 1;
	return 0;
}

/*
 * HTTP/2 (h2c) requests waiting for their HEADERS frame to reach the wire,
 * by (pid, stream id): written by h2-client's send_headers probe (the
 * request's frame::Headers, right before h2 queues it for HPACK), read and
 * deleted by the socket program when it finds that stream's HEADERS frame
 * in a write (propagation.bpf.c). Stream ids repeat across connections: a
 * second connection's request for a stream id still waiting makes the entry
 * PROP_H2_AMBIGUOUS (both go out unchanged); an entry older than
 * PROP_H2_MAX_NS is not used (h2 writes a queued HEADERS frame in the
 * connection task's next poll).
 */
struct prop_h2_key {
	__u32 pid;
	__u32 stream_id;
};

#define PROP_H2_OK		1	/* a context to send */
#define PROP_H2_NO_CTX		2	/* no call from inside a server span waits for this :path */
#define PROP_H2_AMBIGUOUS	3	/* two connections' requests wait under this stream id, or calls from two spans for this :path */
#define PROP_H2_PRESENT		4	/* the request has its own traceparent */

struct prop_h2_out {
	__u64 conn;		/* h2's connection state (streams::Inner) address */
	__u64 ts_ns;
	struct prop_ids ctx;	/* the caller's server span (trace id, span id = the parent, flags) */
	__u8 span_id[8];	/* the CLIENT span's id, made at send_headers */
	__u8 state;		/* PROP_H2_* */
	__u8 own_ts;		/* the request has its own tracestate: none added */
	__u8 _pad[6];
};

#define PROP_H2_MAX_NS (50ULL * 1000000ULL)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct prop_h2_key);
	__type(value, struct prop_h2_out);
} prop_h2_out SEC(".maps");

/*
 * Files a call (a reqwest or tonic call, in the caller's task or thread)
 * under its target hash with the server span it works for (prop_calls,
 * prop_owner_of: its task's, or its lineage's); the
 * same rules as hyper-h1-client's register_call.
 */
static __always_inline void prop_file_call(__u32 pid, __u64 task, __u32 tid, __u32 len, __u64 h, __u64 now)
{
	__u64 owner = prop_owner_of(pid, task, tid);
	struct prop_call_key ck = { .pid = pid, .len = len, .hash = h };
	struct prop_call *c = bpf_map_lookup_elem(&prop_calls, &ck);
	if (c && c->pending != 0 && now - c->last_ns > PROP_CALL_STALE_NS) {
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
	__u64 old = __sync_val_compare_and_swap(&c->owner, 0, owner);
	if (old != 0 && old != owner)
		__sync_lock_test_and_set(&c->owner, PROP_AMBIGUOUS);
	__sync_fetch_and_add(&c->pending, 1);
	c->last_ns = now;
}

/*
 * Takes one waiting call for a target hash (the socket program's rule for
 * HTTP/1): its owner span id, 0 when no call waits, PROP_NO_CTX or
 * PROP_AMBIGUOUS.
 */
static __always_inline __u64 prop_take_call(__u32 pid, __u32 len, __u64 h, __u64 now)
{
	struct prop_call_key ck = { .pid = pid, .len = len, .hash = h };
	struct prop_call *c = bpf_map_lookup_elem(&prop_calls, &ck);
	if (!c)
		return 0;
	__u64 before = __sync_fetch_and_add(&c->pending, -1);
	if (before == 0) {
		__sync_fetch_and_add(&c->pending, 1);
		return 0;
	}
	__u64 owner = c->owner;
	if (before == 1)
		__sync_val_compare_and_swap(&c->owner, owner, 0);
	c->last_ns = now;
	if (owner == 0)
		return PROP_AMBIGUOUS;
	return owner;
}

#endif

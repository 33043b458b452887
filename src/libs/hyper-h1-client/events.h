/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of the hyper HTTP/1 client probes (probes.bpf.c). Mirrored by
 * layouts.ts, which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_HYPER_H1_CLIENT_EVENTS_H
#define OTEL_RUST_AGENT_HYPER_H1_CLIENT_EVENTS_H

#include "../../../bpf/include/events.h"
#include "../otel-sdk/events.h"	/* OTEL_CX_*: reqwest_call_event.sdk_state */

enum hyper_h1_client_event_kind {
	EV_H1_CLIENT_REQUEST  = 0x50,	/* Client::encode entered: a request head is being written */
	EV_H1_CLIENT_RESPONSE = 0x51,	/* Client::parse entered: response bytes, and the request head */
	EV_REQWEST_CALL       = 0x52,	/* reqwest's Client::execute_request entered, in the caller's task */
	EV_REQWEST_BLOCKING_CALL = 0x53,	/* reqwest::blocking's Client::execute entered, on the calling thread (reqwest_call_event) */
	EV_H1_CLIENT_PROPAGATION = 0x54, /* the socket program saw the request head go out (src/propagation) */
	EV_REQWEST_ERROR      = 0x55,	/* reqwest::error::request entered: a hyper-util client error, in the caller's task */
};

/* Words of hyper's Encode / ParseContext copied. Both hold
 * `&mut conn.state.method` (the per-connection address that pairs a
 * response with its request, without knowing either struct's layout). */
#define H1C_MSG_WORDS 6
#define H1C_CTX_WORDS 8
/* Bytes of the request head (still in the connection's write buffer when
 * the response arrives) and of the response head copied. */
#define H1C_REQ_CAPTURE 1024
#define H1C_RES_CAPTURE 512
/* Words of reqwest's Request scanned for its Url's String, and URL bytes copied. */
#define RQ_SCAN_WORDS 32
#define RQ_URL_CAPTURE 512

struct h1c_request_event {
	struct event_header hdr;
	__u64 msg_words[H1C_MSG_WORDS];	/* Encode, raw */
	__u64 dst_addr;			/* the &mut Vec<u8> the head is written into */
	__u64 task_id;			/* tokio task writing it (the connection's task; 0: unknown) */
	__u32 vec_ptr_idx;		/* word index of ptr / cap inside the Vec<u8> at dst_addr */
	__u32 vec_cap_idx;
	__u8  span_id[8];		/* the CLIENT span's id, made here (src/propagation/context.h) */
};

struct h1c_response_event {
	struct event_header hdr;
	__u64 key;			/* the ParseContext word that named an encoded request */
	__u64 req_ts_ns;		/* when that request's encode was entered */
	__u64 req_task_id;		/* task that encoded it */
	__u32 req_tid;			/* thread that encoded it */
	__u32 res_len;			/* BytesMut.len: response bytes buffered */
	__u32 req_captured;		/* bytes copied into req_head[] */
	__u32 res_captured;		/* bytes copied into res_head[] */
	__u8  span_id[8];		/* the CLIENT span's id, made at encode (all zero: none) */
	__u8  res_head[H1C_RES_CAPTURE];
	__u8  req_head[H1C_REQ_CAPTURE];
};

struct reqwest_call_event {
	struct event_header hdr;
	__u64 task_id;			/* the caller's tokio task (0: none / unknown) */
	__u32 url_len;			/* Url.serialization length */
	__u32 captured;			/* bytes copied into url[] */
	__u8  comm[16];			/* the calling thread's name (reqwest::blocking's runtime thread is "reqwest-interna") */
	/* The application's OpenTelemetry current span on the calling thread
	 * (src/libs/otel-sdk/current.h): ids as the SDK holds them (TraceId u128
	 * low half first, SpanId u64, native endian), and what the read found
	 * (OTEL_CX_*; the ids are zero unless sdk_state is OTEL_CX_OK or
	 * OTEL_CX_UNSEEN). */
	__u64 sdk_trace_lo;
	__u64 sdk_trace_hi;
	__u64 sdk_span_id;
	__u8  sdk_state;
	/* OTEP 4947: the thread-context record published on the calling thread
	 * (src/libs/otel-sdk/current.h), ids in W3C byte order; TCTX_*. */
	__u8  tctx_state;
	__u8  _pad0[6];
	__u8  tctx_trace_id[16];
	__u8  tctx_span_id[8];
	__u8  url[RQ_URL_CAPTURE];
};

/* What reqwest_request_error found in the hyper-util error it was given
 * (found by content: hyper-util's ConnectError message literal). */
enum reqwest_error_what {
	RQE_OTHER       = 0,	/* not a ConnectError (or not recognised): no span from it */
	RQE_TCP_CONNECT = 1,	/* "tcp connect error", with the OS error code of its io::Error cause */
	RQE_DNS         = 2,	/* "dns error" */
};
/* Words of the hyper-util error, and of the boxed error it holds, searched. */
#define RQE_WORDS 8

struct reqwest_error_event {
	struct event_header hdr;
	__u64 task_id;			/* the caller's tokio task (0: none / unknown) */
	__u32 os_error;			/* errno of the io::Error cause (RQE_TCP_CONNECT; 0: not an OS error) */
	__u8  what;			/* enum reqwest_error_what */
	__u8  _pad[3];
};

/* What the socket program (src/propagation/propagation.bpf.c) did with the
 * first write of a request head hyper had just encoded on this thread. */
enum h1c_propagation_outcome {
	H1C_PROP_INJECTED      = 1,	/* traceparent inserted after the request line */
	H1C_PROP_NOT_PLAINTEXT = 2,	/* the write is not a plaintext HTTP/1 request head (TLS) */
	H1C_PROP_SPLIT_HEAD    = 3,	/* the head does not end inside this write's first H1C_PROP_SCAN bytes */
	H1C_PROP_NO_CONTEXT    = 4,	/* no reqwest call waits for this target from inside a server span */
	H1C_PROP_AMBIGUOUS     = 5,	/* calls from two server spans wait for this target */
	H1C_PROP_PRESENT       = 6,	/* the request already has a traceparent */
	H1C_PROP_PUSH_FAILED   = 7,	/* the kernel refused to grow or linearize the message */
	H1C_PROP_STALE         = 8,	/* the head was encoded too long before this thread's next write */
};
/* What happened to the incoming request's tracestate (h1c_propagation_event.state). */
enum h1c_state_outcome {
	H1C_STATE_NONE     = 0,	/* the server span's request had none (or the traceparent was not inserted) */
	H1C_STATE_INJECTED = 1,	/* "tracestate: <value>" inserted after the traceparent */
	H1C_STATE_LOST     = 2,	/* it had one, but its entry was evicted: traceparent alone */
	H1C_STATE_PRESENT  = 3,	/* the request has a tracestate of its own: left alone */
};
/* Bytes of a write the socket program looks at for a whole request head. */
#define H1C_PROP_SCAN 1024
/* Bytes inserted: "traceparent: " + 55 + CRLF. */
#define H1C_PROP_LINE 70

struct h1c_propagation_event {
	struct event_header hdr;	/* probe_id 0: no probe; pid/tid: the writer */
	__u8  span_id[8];		/* the client span (encode's) */
	__u8  trace_id[16];		/* what was sent (injected only) */
	__u8  parent_id[8];		/* the server span that made the call (injected only) */
	__u8  flags;			/* trace-flags sent */
	__u8  outcome;			/* enum h1c_propagation_outcome */
	__u8  state;			/* enum h1c_state_outcome */
	__u8  _pad0;
	__u32 msg_size;			/* bytes in the write (before insertion) */
};

#endif

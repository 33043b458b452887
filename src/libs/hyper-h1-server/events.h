/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of the hyper HTTP/1 server probes (probes.bpf.c). Mirrored by
 * layouts.ts, which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_HYPER_H1_SERVER_EVENTS_H
#define OTEL_RUST_AGENT_HYPER_H1_SERVER_EVENTS_H

#include "../../../bpf/include/events.h"

enum hyper_h1_server_event_kind {
	EV_H1_SERVER_REQUEST  = 0x01,	/* request head parsed */
	EV_H1_SERVER_RESPONSE = 0x02,	/* response head encoded */
	/* response head about to be written (Conn::write_head, the fat-LTO
	 * fallback): an h1_response_event whose msg_words[0] is the address of
	 * the Conn itself, not words of an Encode */
	EV_H1_SERVER_RESPONSE_CONN = 0x03,
};

/* Bytes of the request head copied per request. Request line, Host,
 * User-Agent and traceparent are nearly always within the first 2 KiB.
 * Heads that fit in H1_HEAD_CAPTURE_SMALL go out in a record that long
 * (most do), so the ring holds four times more of them. */
#define H1_HEAD_CAPTURE 2048
#define H1_HEAD_CAPTURE_SMALL 512
/* Words of hyper's ParseContext / Encode structs copied: both hold
 * `&mut conn.state.method`, a per-connection address that pairs a response
 * with its request without knowing either struct's layout. */
#define H1_CTX_WORDS 8
#define H1_MSG_WORDS 6
/* Bytes of the encoded response head copied: the status line. */
#define H1_STATUS_CAPTURE 64

struct h1_request_event {
	struct event_header hdr;
	__u64 buf_addr;			/* address of the &mut BytesMut argument */
	__u64 ctx_words[H1_CTX_WORDS];	/* ParseContext, raw */
	__u64 task_id;			/* tokio task parsing it: the connection's task (0: unknown) */
	__u32 buf_len;			/* BytesMut.len: bytes buffered */
	__u32 captured;			/* bytes copied into head[] */
	/* The server span's ids, made here (src/propagation/context.h): the
	 * agent exports exactly these, so calls this request makes can carry
	 * them before the agent has read this event. */
	__u8  trace_id[16];		/* from the head's traceparent (ctx_flags & H1_CTX_REMOTE) or new */
	__u8  span_id[8];
	__u32 ctx_flags;		/* H1_CTX_*: 0 = no ids (the agent makes them) */
	__u32 _pad;
	__u8  head[H1_HEAD_CAPTURE];
};
#define H1_CTX_IDS	1	/* trace_id/span_id are set */
#define H1_CTX_REMOTE	2	/* trace_id came from an incoming traceparent */

struct h1_response_event {
	struct event_header hdr;
	__u64 dst_addr;			/* address of the &mut Vec<u8> argument */
	__u64 msg_words[H1_MSG_WORDS];	/* Encode, raw */
	__u64 entry_ts_ns;		/* when encode was entered */
	__u32 written;			/* bytes encode appended to dst */
	__u32 captured;			/* bytes copied into status_line[] */
	__u16 status;			/* status read at entry (0: take it from status_line) */
	__u16 _pad[3];
	__u8  status_line[H1_STATUS_CAPTURE];
};

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of the h2 client probes (probes.bpf.c). Mirrored by layouts.ts,
 * which test/unit/event-layout.test.ts checks against this file. The probe
 * configs are h2-server's (H2_CFG_* in ../h2-server/events.h): the same
 * frame::Headers, store::Ptr and streams::Inner offsets, filled by its
 * offsets.ts from the offsets database.
 */
#ifndef OTEL_RUST_AGENT_H2_CLIENT_EVENTS_H
#define OTEL_RUST_AGENT_H2_CLIENT_EVENTS_H

#include "../../../bpf/include/events.h"

enum h2_client_event_kind {
	EV_H2_CLIENT_REQUEST  = 0xa0,	/* a request's HEADERS handed to h2's send queue */
	EV_H2_CLIENT_RESPONSE = 0xa1,	/* a response's HEADERS received (decoded) */
	EV_H2_CLIENT_TRAILERS = 0xa2,	/* a response's trailers received (decoded) */
	EV_H2_CLIENT_RESET    = 0xa3,	/* RST_STREAM received for a stream */
	EV_H2_CLIENT_PROPAGATION = 0xa4, /* what the socket program did with a request's HEADERS frame (src/propagation) */
};

#define H2C_PATH_CAP		512	/* :path, with the query */
#define H2C_AUTHORITY_CAP	128	/* :authority */
#define H2C_SCHEME_CAP		8	/* :scheme */
#define H2C_CTYPE_CAP		64	/* content-type (application/grpc...) */
#define H2C_METHOD_CAP		32	/* an extension method's name */
#define H2C_GRPC_MESSAGE_CAP	128	/* grpc-message */

struct h2_client_request_event {
	struct event_header hdr;
	__u64 conn;			/* the connection: address of h2's stream state (streams::Inner) */
	__u64 request_id;		/* address of the request's header storage (HeaderMap entries) */
	__u64 task_id;			/* tokio task sending it (hyper's client dispatch task; 0: unknown) */
	__u32 stream_id;
	__u8  method;			/* H2_METHOD_* (../h2-server/events.h) */
	__u8  end_stream;		/* the HEADERS frame ends the request (no body) */
	__u16 path_len;
	__u16 authority_len;
	__u16 scheme_len;
	__u16 ctype_len;
	__u16 method_len;
	__u8  path[H2C_PATH_CAP];
	__u8  authority[H2C_AUTHORITY_CAP];
	__u8  scheme[H2C_SCHEME_CAP];
	__u8  ctype[H2C_CTYPE_CAP];
	__u8  method_name[H2C_METHOD_CAP];
	__u8  span_id[8];		/* the CLIENT span's id, made here (src/propagation/context.h) */
	__u8  prop;			/* PROP_H2_* filed for the socket program; 0: not filed (enum h2c_propagation_outcome's NOT_PLAINTEXT when :scheme is https) */
	__u8  _pad1[7];
};

/* A response head (EV_H2_CLIENT_RESPONSE, status set), trailers (EV_H2_CLIENT_TRAILERS, status 0)
 * or a reset (EV_H2_CLIENT_RESET: reset_code, no grpc fields). */
struct h2_client_response_event {
	struct event_header hdr;
	__u64 conn;
	__u32 stream_id;
	__u16 status;			/* :status (0 for trailers) */
	__u8  end_stream;		/* the frame ends the stream (trailers-only response, empty body) */
	__u8  _pad0;
	__s16 grpc_status;		/* grpc-status in the frame, -1: none */
	__u16 grpc_message_len;
	__u32 reset_code;		/* RST_STREAM error code (RFC 9113; 8 = CANCEL) */
	__u8  grpc_message[H2C_GRPC_MESSAGE_CAP];
};

/* What happened to a request's traceparent (h2c_propagation_event.outcome). */
enum h2c_propagation_outcome {
	H2C_PROP_INJECTED      = 1,	/* appended to the HEADERS frame's header block (HPACK literal, not indexed) */
	H2C_PROP_NO_CONTEXT    = 2,	/* no call from inside a server span waits for this :path */
	H2C_PROP_AMBIGUOUS     = 3,	/* calls from two spans for this :path, or two connections' requests for this stream id */
	H2C_PROP_PRESENT       = 4,	/* the request has its own traceparent */
	H2C_PROP_SPLIT         = 5,	/* the HEADERS frame is not whole inside one write */
	H2C_PROP_CONTINUATION  = 6,	/* the header block goes on in CONTINUATION frames */
	H2C_PROP_PADDED        = 7,	/* the HEADERS frame is padded */
	H2C_PROP_TOO_LARGE     = 8,	/* the frame would grow past 16384 bytes (the smallest SETTINGS_MAX_FRAME_SIZE) */
	H2C_PROP_PUSH_FAILED   = 9,	/* the kernel refused to grow or linearize the message */
	H2C_PROP_STALE         = 10,	/* the HEADERS frame left more than PROP_H2_MAX_NS after send_headers */
	H2C_PROP_MULTI         = 11,	/* a request HEADERS frame beyond the eight looked at per write (H2_REC in propagation.bpf.c) */
	H2C_PROP_LOST_SYNC     = 12,	/* the socket's frames are no longer followed (more than H2C_PROP_MAX_FRAMES in a write) */
	H2C_PROP_NOT_PLAINTEXT = 13,	/* :scheme https: the socket carries TLS (counted at send_headers) */
	H2C_PROP_NO_ENTRY      = 14,	/* a client HEADERS frame whose send_headers was not seen, or was already used */
};

/* What happened to the tracestate of an injected request (h2c_propagation_event.state). */
enum h2c_state_outcome {
	H2C_STATE_NONE      = 0,	/* the server span had none */
	H2C_STATE_INJECTED  = 1,	/* an HPACK literal "tracestate" field after the traceparent one */
	H2C_STATE_LOST      = 2,	/* the span had one, its entry was evicted: the traceparent went alone */
	H2C_STATE_PRESENT   = 3,	/* the request has its own tracestate: none added */
	H2C_STATE_TOO_LARGE = 4,	/* the frame would grow past 16384 bytes with it: the traceparent went alone */
};

#define H2C_PROP_MAX_FRAMES 256
#define H2C_PROP_FIELD 69		/* 0x00, 11, "traceparent", 55, the value */

struct h2c_propagation_event {
	struct event_header hdr;
	__u8  span_id[8];		/* the CLIENT span's id (send_headers) */
	__u8  trace_id[16];		/* what went out (outcome INJECTED) */
	__u8  parent_id[8];
	__u32 stream_id;
	__u32 msg_size;			/* bytes of the write, before the insertion */
	__u8  flags;
	__u8  outcome;			/* enum h2c_propagation_outcome */
	__u8  state;			/* enum h2c_state_outcome (outcome INJECTED): the tracestate */
	__u8  _pad[5];
};

#endif

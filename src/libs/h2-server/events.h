/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events and probe configs of the h2 server probes (probes.bpf.c). Mirrored
 * by layouts.ts, which test/unit/event-layout.test.ts checks against this
 * file; offsets.ts fills the configs from the offsets database.
 */
#ifndef OTEL_RUST_AGENT_H2_SERVER_EVENTS_H
#define OTEL_RUST_AGENT_H2_SERVER_EVENTS_H

#include "../../../bpf/include/events.h"

enum h2_server_event_kind {
	EV_H2_SERVER_REQUEST  = 0x10,	/* a request's header block, decoded by h2 */
	EV_H2_SERVER_RESPONSE = 0x11,	/* a response head handed to h2 */
	EV_H2_SERVER_RESET    = 0x12,	/* RST_STREAM received for a stream */
};

/* Bytes kept of each request field (powers of two). */
#define H2_PATH_CAP		512	/* :path, with the query */
#define H2_AUTHORITY_CAP	128	/* :authority */
#define H2_SCHEME_CAP		8	/* :scheme */
#define H2_HOST_CAP		128	/* host (when :authority is absent) */
#define H2_UA_CAP		256	/* user-agent */
#define H2_TRACEPARENT_CAP	64	/* traceparent (55 for version 00) */
#define H2_TRACESTATE_CAP	256	/* tracestate */
#define H2_CTYPE_CAP		64	/* content-type (application/grpc...) */
#define H2_METHOD_CAP		32	/* an extension method's name */
#define H2_GRPC_MESSAGE_CAP	128	/* grpc-message of a trailers-only response */

/* Request methods, as the agent names them (h2 gives http's Method enum). */
#define H2_METHOD_EXTENSION	0	/* name in method_name */
#define H2_METHOD_GET		1
#define H2_METHOD_HEAD		2
#define H2_METHOD_POST		3
#define H2_METHOD_PUT		4
#define H2_METHOD_DELETE	5
#define H2_METHOD_CONNECT	6
#define H2_METHOD_OPTIONS	7
#define H2_METHOD_TRACE		8
#define H2_METHOD_PATCH		9
#define H2_METHOD_QUERY		10
#define H2_METHOD_UNKNOWN	255	/* a discriminant the config does not name */

struct h2_request_event {
	struct event_header hdr;
	__u64 conn;			/* the connection: address of h2's stream state (streams::Inner) */
	__u64 request_id;		/* address of the request's header storage (HeaderMap entries) */
	__u64 task_id;			/* tokio task decoding it: the connection's task (0: unknown) */
	__u32 stream_id;
	__u8  method;			/* H2_METHOD_* */
	__u8  end_stream;		/* the HEADERS frame ended the stream (no body) */
	__u16 n_headers;		/* entries in the header map */
	__u16 path_len;
	__u16 authority_len;
	__u16 scheme_len;
	__u16 host_len;
	__u16 ua_len;
	__u16 traceparent_len;
	__u16 tracestate_len;
	__u16 ctype_len;
	__u16 method_len;
	__u16 _pad[3];
	__u8  path[H2_PATH_CAP];
	__u8  authority[H2_AUTHORITY_CAP];
	__u8  scheme[H2_SCHEME_CAP];
	__u8  host[H2_HOST_CAP];
	__u8  ua[H2_UA_CAP];
	__u8  traceparent[H2_TRACEPARENT_CAP];
	__u8  tracestate[H2_TRACESTATE_CAP];
	__u8  ctype[H2_CTYPE_CAP];
	__u8  method_name[H2_METHOD_CAP];
};

struct h2_response_event {
	struct event_header hdr;
	__u64 conn;			/* as in h2_request_event */
	__u64 task_id;			/* tokio task sending it: the stream's task */
	__u32 stream_id;
	__u16 status;			/* :status */
	__u8  end_stream;		/* the head ends the stream (trailers-only, empty body) */
	__u8  _pad0;
	__s16 grpc_status;		/* grpc-status in the head (end_stream only), -1: none */
	__u16 grpc_message_len;
	__u32 _pad1;
	__u8  grpc_message[H2_GRPC_MESSAGE_CAP];
};

struct h2_reset_event {
	struct event_header hdr;
	__u64 conn;
	__u32 stream_id;
	__u32 error_code;		/* RFC 9113 error code (8 = CANCEL) */
};

/*
 * Probe configs (struct probe_config slots), filled by offsets.ts.
 * recv_headers(sret, &mut Recv, frame: &Headers, stream: &mut store::Ptr, counts: &mut Counts):
 */
#define H2_CFG_FRAME_STREAM_ID	0	/* Headers.stream_id */
#define H2_CFG_FRAME_FLAGS	1	/* Headers.flags (END_STREAM = 0x1) */
#define H2_CFG_PSEUDO		2	/* Headers.header_block + HeaderBlock.pseudo */
#define H2_CFG_FIELDS		3	/* Headers.header_block + HeaderBlock.fields: the HeaderMap */
#define H2_CFG_P_METHOD		4	/* Pseudo.method: Option<Method> */
#define H2_CFG_P_SCHEME		5	/* Pseudo.scheme: Option<Bytes> */
#define H2_CFG_P_AUTHORITY	6
#define H2_CFG_P_PATH		7
#define H2_CFG_P_STATUS		8	/* Pseudo.status: Option<StatusCode> (u16, 0 = None) */
#define H2_CFG_M_TAG		9	/* offset of Method's discriminant byte */
#define H2_CFG_M_NONE		10	/* its value for Option::None */
#define H2_CFG_M_GET		11	/* discriminants of GET .. QUERY (H2_METHOD_* order), -1: absent */
#define H2_CFG_M_QUERY		20
#define H2_CFG_M_INLINE		21	/* discriminant of ExtensionInline */
#define H2_CFG_M_INLINE_BYTES	22	/* its name bytes */
#define H2_CFG_M_INLINE_LEN	23	/* its length byte */
#define H2_CFG_M_ALLOC		24	/* discriminant of ExtensionAllocated */
#define H2_CFG_M_ALLOC_PTR	25	/* its Box<[u8]> pointer */
#define H2_CFG_M_ALLOC_LEN	26	/* and length */
#define H2_CFG_PTR_STORE	27	/* store::Ptr.store */
#define H2_CFG_PTR_STREAM_ID	28	/* store::Ptr.key + Key.stream_id */
#define H2_CFG_INNER_STORE	29	/* streams::Inner.store */
#define H2_CFG_INNER_COUNTS	30	/* streams::Inner.counts */
#define H2_CFG_INNER_RECV	31	/* streams::Inner.actions + Actions.recv */
#define H2_CFG_STD_UA		32	/* StandardHeader::UserAgent */
#define H2_CFG_STD_CTYPE	33	/* StandardHeader::ContentType */
#define H2_CFG_STD_HOST		34	/* StandardHeader::Host */
#define H2_CFG_HM		40	/* HeaderMap walk block (bpf/include/http_headermap.h), HM_SLOTS slots */
#define H2_CFG_REQUEST_SLOTS	(H2_CFG_HM + 14)

/* StreamRef<B>::send_response(&mut self, response: Response<()>, end_of_stream: bool), and the reset: */
#define H2R_CFG_SELF_ARC	0	/* StreamRef.opaque + OpaqueStreamRef.inner: Arc<Mutex<Inner>> */
#define H2R_CFG_SELF_STREAM_ID	1	/* StreamRef.opaque + OpaqueStreamRef.key + Key.stream_id */
#define H2R_CFG_ARC_INNER	2	/* ArcInner.data + Mutex.data: Arc pointer -> Inner */
#define H2R_CFG_STATUS		3	/* Response.head + Parts.status */
#define H2R_CFG_HEADERS		4	/* Response.head + Parts.headers */
#define H2R_CFG_INNER_COUNTS	5	/* recv_reset: Inner.counts */
#define H2R_CFG_INNER_RECV	6	/* recv_reset: Inner.actions + Actions.recv */
#define H2R_CFG_HM		40	/* HeaderMap walk block */
#define H2R_CFG_SLOTS		(H2R_CFG_HM + 14)

#endif

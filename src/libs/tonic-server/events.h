/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events and probe config of the tonic server probe (probes.bpf.c). Mirrored
 * by layouts.ts, which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_TONIC_SERVER_EVENTS_H
#define OTEL_RUST_AGENT_TONIC_SERVER_EVENTS_H

#include "../../../bpf/include/events.h"

enum tonic_server_event_kind {
	EV_TONIC_SERVER_TRAILERS = 0x30,	/* a stream's trailers handed to h2: the call's status */
};

#define GRPC_MESSAGE_CAP 128

struct grpc_trailers_event {
	struct event_header hdr;
	__u64 conn;			/* h2 connection (as h2-server's events) */
	__u64 task_id;			/* tokio task sending them: the stream's task */
	__u32 stream_id;
	__s16 grpc_status;		/* grpc-status, -1: none */
	__u16 grpc_message_len;
	__u8  grpc_message[GRPC_MESSAGE_CAP];
};

/* StreamRef<B>::send_trailers(&mut self, trailers: HeaderMap): config slots. */
#define GT_CFG_SELF_ARC		0	/* StreamRef.opaque + OpaqueStreamRef.inner */
#define GT_CFG_SELF_STREAM_ID	1	/* StreamRef.opaque + OpaqueStreamRef.key + Key.stream_id */
#define GT_CFG_ARC_INNER	2	/* ArcInner.data + Mutex.data */
#define GT_CFG_HM		8	/* HeaderMap walk block (bpf/include/http_headermap.h) */
#define GT_CFG_SLOTS		(GT_CFG_HM + 14)

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event and probe config of the tonic client probe (probes.bpf.c). Mirrored
 * by layouts.ts, which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_TONIC_CLIENT_EVENTS_H
#define OTEL_RUST_AGENT_TONIC_CLIENT_EVENTS_H

#include "../../../bpf/include/events.h"

enum tonic_client_event_kind {
	EV_TONIC_CLIENT_CALL = 0x60,	/* a gRPC call made by the application, in its task */
};

#define TONIC_PATH_CAP 256

struct tonic_call_event {
	struct event_header hdr;
	__u64 task_id;			/* the caller's tokio task (0: unknown) */
	__u16 path_len;			/* bytes of the call's path (the PathAndQuery), may exceed the capture */
	__u16 _pad[3];
	__u8  path[TONIC_PATH_CAP];
};

/* GrpcConfig::prepare_request(sret, &self, request: &Request<Body>, path: &PathAndQuery): config slots. */
#define TC_CFG_PATH_DATA	0	/* PathAndQuery.data (a Bytes): checked per hit (starts with '/') */
#define TC_CFG_BYTES_PTR	1	/* Bytes.ptr */
#define TC_CFG_BYTES_LEN	2	/* Bytes.len */
#define TC_CFG_SLOTS		3

#endif

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
	EV_TONIC_CLIENT_ERROR = 0x61,	/* Status::from_error entered: a call's transport error becomes a Status, in its task */
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

/*
 * Status::from_error(err: Box<dyn Error>) (rdi = data, rsi = vtable): the
 * error's type is told by its vtable's first word, the type's drop glue
 * (core::ptr::drop_in_place<T>), whose addresses the agent gives here as
 * vaddrs, with the probed function's own vaddr (runtime bias = ip - it).
 */
#define TC_ERR_FN		0	/* vaddr of the probed from_error */
#define TC_ERR_N_TRANSPORT	1	/* how many drop_in_place<tonic::transport::Error> copies follow */
#define TC_ERR_TRANSPORT	2	/* ... their vaddrs (up to TC_ERR_MAX) */
#define TC_ERR_N_CONNECT	10	/* how many drop_in_place<tonic::status::ConnectError> copies follow */
#define TC_ERR_CONNECT		11	/* ... their vaddrs (up to TC_ERR_MAX) */
#define TC_ERR_MAX		8
#define TC_ERR_SLOTS		19
/* Words of the transport error searched for its boxed source. */
#define TC_ERR_WORDS		8

struct tonic_error_event {
	struct event_header hdr;
	__u64 task_id;			/* the caller's tokio task (0: unknown) */
	__s32 code;			/* gRPC code the Status will have (14: UNAVAILABLE), -1: not told */
	__u32 _pad;
};

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of the rustls server probe (probes.bpf.c). Mirrored by layouts.ts,
 * which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_RUSTLS_SERVER_EVENTS_H
#define OTEL_RUST_AGENT_RUSTLS_SERVER_EVENTS_H

#include "../../../bpf/include/events.h"

enum rustls_server_event_kind {
	EV_RUSTLS_SERVER_HELLO = 0x90,	/* a TLS server handshake processed a ClientHello */
};

struct rustls_hello_event {
	struct event_header hdr;
	__u64 task_id;		/* tokio task doing the handshake (0: none) */
};

#endif

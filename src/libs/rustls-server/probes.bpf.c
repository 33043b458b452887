// SPDX-License-Identifier: Apache-2.0
/*
 * rustls server probe: a TLS handshake, seen once per connection.
 *
 *   <rustls::server::hs::ExpectClientHello as State<ServerConnectionData>>::handle   entry
 *
 * The handshake state machine calls its states through `Box<dyn State>`, so
 * this method is address-taken (a vtable entry) and always has an out-of-line
 * copy, LTO or not. It runs when the server processes the ClientHello, in the
 * task that drives the handshake (tokio-rustls' accept future). The span
 * stage marks that task as serving TLS: requests it then handles are https.
 * Its arguments are not read.
 */
#include "common.h"
#include "events.h"

SEC("uprobe")
int rustls_client_hello(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	struct rustls_hello_event e = {};
	fill_header(&e.hdr, EV_RUSTLS_SERVER_HELLO, cookie);
	e.task_id = current_task_id(cookie);
	submit(st, &e, sizeof(e));
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events and probe config of the axum probe (probes.bpf.c). Mirrored by
 * layouts.ts, which test/unit/event-layout.test.ts checks against this file.
 */
#ifndef OTEL_RUST_AGENT_AXUM_EVENTS_H
#define OTEL_RUST_AGENT_AXUM_EVENTS_H

#include "../../../bpf/include/events.h"

enum axum_event_kind {
	EV_AXUM_ROUTE = 0x20,	/* a route matched a request */
};

/*
 * set_matched_path_for_request(id: RouteId, route_id_to_path: &HashMap<RouteId, Arc<str>>,
 *                              extensions: &mut http::Extensions)
 * The map is read by the agent from the process (it is built once, when the
 * router is); the event carries its table and the layout of its buckets.
 */
struct axum_route_event {
	struct event_header hdr;
	__u64 request_id;	/* the request's header storage (http::request::Parts.headers' entries) */
	__u64 task_id;		/* tokio task routing it */
	__u64 map;		/* route_id_to_path */
	__u64 ctrl;		/* its hashbrown control bytes; bucket i ends at ctrl - i * bucket_size */
	__u64 bucket_mask;	/* buckets - 1 */
	__u64 items;
	__u32 route_id;
	__u16 bucket_size;	/* sizeof((RouteId, Arc<str>)) */
	__u16 bucket_id;	/* offset of the RouteId (u32) in a bucket */
	__u16 bucket_ptr;	/* offset of the Arc<str> pointer (to its ArcInner) */
	__u16 bucket_len;	/* offset of the str length */
	__u16 arc_data;		/* offset of the str in its ArcInner */
	__u16 _pad;
};

/* Probe config slots (struct probe_config), filled by offsets.ts. */
#define AX_CFG_EXT_TO_ENTRIES	0	/* Extensions -> Parts.headers.entries.ptr (signed) */
#define AX_CFG_MAP_CTRL		1	/* HashMap -> RawTable ctrl */
#define AX_CFG_MAP_MASK		2	/* -> bucket_mask */
#define AX_CFG_MAP_ITEMS	3	/* -> items */
#define AX_CFG_BUCKET_SIZE	4
#define AX_CFG_BUCKET_ID	5
#define AX_CFG_BUCKET_PTR	6
#define AX_CFG_BUCKET_LEN	7
#define AX_CFG_ARC_DATA		8
#define AX_CFG_SLOTS		9

#endif

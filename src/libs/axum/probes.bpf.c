// SPDX-License-Identifier: Apache-2.0
/*
 * axum route probe (axum 0.7 and 0.8).
 *
 *   axum::extract::matched_path::set_matched_path_for_request   entry
 *
 * Non-generic and pub(crate), called from the router's generic
 * call_with_state (instantiated in the application crate), so it stays out
 * of line without LTO. Called once per routing level with the RouteId that
 * matched, the router's route_id_to_path map and the request's extensions.
 * x86-64 (checked by disassembly on axum 0.7.9 and 0.8.9): edi = route id,
 * rsi = &HashMap, rdx = &mut Extensions.
 *
 * The request is named by its header storage: `extensions` is a field of the
 * request's http::request::Parts, whose headers' entries buffer is the one
 * h2 decoded the request into (the spans stage finds the h2 stream by it);
 * an HTTP/1 request is found by its task instead.
 */
#include "common.h"
#include "events.h"

SEC("uprobe")
int axum_matched_path(struct pt_regs *ctx)
{
	__u64 cookie;
	struct probe_stats *st = count_hit(ctx, &cookie);
	const struct probe_config *cfg = config_of(cookie);
	if (!cfg) {
		count_bad_layout(st);
		return 0;
	}
	__u64 map = PT_REGS_PARM2(ctx), ext = PT_REGS_PARM3(ctx);
	struct axum_route_event e = {};
	fill_header(&e.hdr, EV_AXUM_ROUTE, cookie);
	e.route_id = (__u32)PT_REGS_PARM1(ctx);
	e.map = map;
	e.ctrl = read_user_u64(map + CFG(cfg, AX_CFG_MAP_CTRL));
	e.bucket_mask = read_user_u64(map + CFG(cfg, AX_CFG_MAP_MASK));
	e.items = read_user_u64(map + CFG(cfg, AX_CFG_MAP_ITEMS));
	e.request_id = read_user_u64(ext + CFG(cfg, AX_CFG_EXT_TO_ENTRIES));
	/* A hashbrown table: a power-of-two bucket count, at least as many as its items. */
	if (!user_ptr_ok(map) || !user_ptr_ok(e.ctrl) || e.bucket_mask > 65535 || (e.bucket_mask & (e.bucket_mask + 1)) != 0 ||
	    e.items == 0 || e.items > e.bucket_mask + 1) {
		count_bad_layout(st);
		return 0;
	}
	e.task_id = current_task_id(cookie);
	e.bucket_size = (__u16)CFG(cfg, AX_CFG_BUCKET_SIZE);
	e.bucket_id = (__u16)CFG(cfg, AX_CFG_BUCKET_ID);
	e.bucket_ptr = (__u16)CFG(cfg, AX_CFG_BUCKET_PTR);
	e.bucket_len = (__u16)CFG(cfg, AX_CFG_BUCKET_LEN);
	e.arc_data = (__u16)CFG(cfg, AX_CFG_ARC_DATA);
	submit(st, &e, sizeof(e));
	return 0;
}

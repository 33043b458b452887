// SPDX-License-Identifier: Apache-2.0
/*
 * Benchmark calibration probe (bench/run.ts, bench/calibrate/target.c).
 *
 * Does exactly the minimal work every real probe does first: read the attach
 * cookie, look up the probe's per-CPU counters and count the hit. The cost of
 * one hit measured with it is the floor any probe pays on this machine (trap,
 * program run, return to user space); the agent's probes only add their
 * argument reads and ring buffer writes on top.
 */
#include "common.h"

SEC("uprobe")
int calibrate_hit(struct pt_regs *ctx)
{
	__u64 cookie;

	count_hit(ctx, &cookie);
	return 0;
}

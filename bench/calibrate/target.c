// SPDX-License-Identifier: Apache-2.0
/*
 * Calibration target for `make bench`: measures what one uprobe hit costs on
 * this machine. bench/run.ts compiles it with gcc into a temp dir at bench
 * time, starts it, attaches (or not) bpf/calibrate.bpf.c at the function under
 * test, then writes a line on stdin. The program calls that function N times
 * and prints
 *   ns_per_call <float> calls <N>
 * on stdout. Run with and without the probe: the difference is the cost of a
 * hit (trap, BPF program, return to user space).
 *
 * usage: target [N [fn]]   N default 200000; fn = probed_fn (default) or probed_push_fn
 *
 * probed_fn compiles to a bare `ret`, which the kernel single-steps out of
 * line (two traps), like our probes at return sites. probed_push_fn starts
 * with `push %rbp`, like the Rust functions our entry probes sit on; x86
 * kernels emulate that instruction instead of single-stepping it (one trap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((noinline)) void probed_fn(void)
{
	/* Keeps the call and the function body from being optimized away. */
	__asm__ __volatile__("" ::: "memory");
}

/* Written in assembly so the compiler cannot drop the frame setup. */
void probed_push_fn(void);
__asm__(".text\n"
	".globl probed_push_fn\n"
	".type probed_push_fn, @function\n"
	"probed_push_fn:\n"
	"	push %rbp\n"
	"	mov %rsp, %rbp\n"
	"	pop %rbp\n"
	"	ret\n"
	".size probed_push_fn, .-probed_push_fn\n");

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	int push = argc > 2 && strcmp(argv[2], "probed_push_fn") == 0;
	char line[64];

	if (n <= 0)
		n = 200000;
	/* Tell the bench we are ready to be probed, then wait for its go. */
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;

	/* The probe must fire exactly n times (the bench checks its counter), so
	 * the function is not called outside the timed loop; a first clock read
	 * warms up the vDSO instead. */
	(void)now_ns();
	double t0 = now_ns();
	if (push)
		for (long i = 0; i < n; i++)
			probed_push_fn();
	else
		for (long i = 0; i < n; i++)
			probed_fn();
	double t1 = now_ns();

	printf("ns_per_call %.3f calls %ld\n", (t1 - t0) / (double)n, n);
	fflush(stdout);
	return 0;
}

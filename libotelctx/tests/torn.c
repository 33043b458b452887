/* Torn-record check. A writer thread rewrites its context as fast as it
 * can while a POSIX timer (CLOCK_MONOTONIC, SIGEV_THREAD_ID) sends SIGPROF
 * to that same thread at a high rate. The handler plays the external
 * reader: the thread is interrupted, exactly the situation OTEP 4947
 * assumes. It reads the slot and the record and checks that a record with
 * valid == 1 is entirely consistent. Every byte of a record derives from
 * one counter, and the attribute count and lengths vary with it, so any mix
 * of two updates is detected.
 *
 *   torn inplace  [seconds]  otelctx_update on the attached record
 *   torn swap     [seconds]  otelctx_new + otelctx_attach + otelctx_free
 *   torn control  [seconds]  negative control: rewrites the attached record
 *                            without the valid protocol (must be caught)
 * Prints one JSON line with the counts. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "otelctx.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static volatile sig_atomic_t stop;
static volatile long samples, valid_samples, invalid_samples, null_samples, torn;

/* The record that counter c must produce. */
static void expected(uint64_t c, otelctx_record *r) {
  memset(r, 0, sizeof *r);
  for (int i = 0; i < 8; i++) {
    r->trace_id[i] = (uint8_t)(c >> (56 - 8 * i));
    r->trace_id[8 + i] = (uint8_t)~(c >> (56 - 8 * i));
  }
  uint64_t m = c * 0x9e3779b97f4a7c15ull | 1;
  for (int i = 0; i < 8; i++) r->span_id[i] = (uint8_t)(m >> (8 * i));
  r->valid = 1;
  r->trace_flags = (uint8_t)(c & 0xff);
  size_t off = 0, nattrs = 1 + c % 5;
  for (size_t j = 0; j < nattrs; j++) {
    size_t len = (size_t)((c + j * 37) % 110);
    r->attrs_data[off++] = (uint8_t)j;
    r->attrs_data[off++] = (uint8_t)len;
    for (size_t k = 0; k < len; k++) r->attrs_data[off++] = (uint8_t)('a' + (c + j + k) % 26);
  }
  r->attrs_data_size = (uint16_t)off;
}

/* Attribute list for counter c (same content as expected()). */
static size_t attrs_for(uint64_t c, const otelctx_record *r, otelctx_attr *out) {
  size_t off = 0, n = 0;
  while (off < r->attrs_data_size) {
    out[n].key_index = r->attrs_data[off];
    out[n].len = r->attrs_data[off + 1];
    out[n].value = (const char *)&r->attrs_data[off + 2];
    off += 2 + out[n].len;
    n++;
  }
  (void)c;
  return n;
}

static void on_sigprof(int sig) {
  (void)sig;
  int saved = errno;
  samples++;
  const otelctx_record *p = otelctx_current();
  if (!p) {
    null_samples++;
    errno = saved;
    return;
  }
  /* Read like a reader: the 28-byte header, then attrs_data_size bytes. */
  otelctx_record copy;
  const volatile uint8_t *src = (const volatile uint8_t *)p;
  uint8_t *dst = (uint8_t *)&copy;
  for (size_t i = 0; i < OTELCTX_HEADER_SIZE; i++) dst[i] = src[i];
  if (copy.valid != 1) {
    invalid_samples++;
    errno = saved;
    return;
  }
  valid_samples++;
  if (copy.attrs_data_size > OTELCTX_MAX_ATTRS_DATA) {
    torn++;
    errno = saved;
    return;
  }
  for (size_t i = 0; i < copy.attrs_data_size; i++) dst[OTELCTX_HEADER_SIZE + i] = src[OTELCTX_HEADER_SIZE + i];
  uint64_t c = 0;
  for (int i = 0; i < 8; i++) c = c << 8 | copy.trace_id[i];
  otelctx_record want;
  expected(c, &want);
  if (memcmp(&want, &copy, OTELCTX_HEADER_SIZE + want.attrs_data_size) != 0 ||
      want.attrs_data_size != copy.attrs_data_size)
    torn++;
  errno = saved;
}

struct args {
  const char *mode;
  double seconds;
  long updates;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *writer(void *p) {
  struct args *a = p;
  timer_t timer;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGPROF;
  sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
  if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
    perror("timer_create");
    exit(1);
  }
  otelctx_record want;
  otelctx_attr attrs[8];
  expected(1, &want);
  otelctx_attach(otelctx_new(want.trace_id, want.span_id, want.trace_flags, NULL, 0));
  if (otelctx_update(want.trace_id, want.span_id, want.trace_flags, attrs, attrs_for(1, &want, attrs)) != 0) exit(1);

  struct itimerspec its = {{0, 20000}, {0, 20000}}; /* every 20 us */
  timer_settime(timer, 0, &its, NULL);
  double end = now_s() + a->seconds;
  uint64_t c = 2;
  int control = strcmp(a->mode, "control") == 0, swap = strcmp(a->mode, "swap") == 0;
  for (;; c++) {
    if ((c & 1023) == 0 && now_s() >= end) break;
    expected(c, &want);
    size_t n = attrs_for(c, &want, attrs);
    if (control) {
      /* No valid toggling: byte-by-byte rewrite of the attached record. */
      volatile uint8_t *dst = (volatile uint8_t *)otelctx_current();
      const uint8_t *src = (const uint8_t *)&want;
      for (size_t i = 0; i < (size_t)OTELCTX_HEADER_SIZE + want.attrs_data_size; i++)
        if (i != offsetof(otelctx_record, valid)) dst[i] = src[i];
    } else if (swap) {
      otelctx_record *r = otelctx_new(want.trace_id, want.span_id, want.trace_flags, attrs, n);
      if (!r) exit(1);
      otelctx_free(otelctx_attach(r));
    } else if (otelctx_update(want.trace_id, want.span_id, want.trace_flags, attrs, n) != 0) {
      exit(1);
    }
  }
  struct itimerspec off = {{0, 0}, {0, 0}};
  timer_settime(timer, 0, &off, NULL);
  timer_delete(timer);
  a->updates = (long)(c - 2);
  otelctx_free(otelctx_detach());
  return NULL;
}

int main(int argc, char **argv) {
  struct args a = {argc > 1 ? argv[1] : "inplace", argc > 2 ? atof(argv[2]) : 2.0, 0};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigprof;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPROF, &sa, NULL);
  pthread_t t;
  pthread_create(&t, NULL, writer, &a);
  pthread_join(t, NULL);
  printf("{\"mode\":\"%s\",\"updates\":%ld,\"samples\":%ld,\"valid\":%ld,\"invalid\":%ld,"
         "\"null\":%ld,\"torn\":%ld}\n",
         a.mode, a.updates, samples, valid_samples, invalid_samples, null_samples, torn);
  return 0;
}

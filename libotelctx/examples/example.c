/*
 * libotelctx example: the model for integrators.
 *
 *   1. Name the thread attributes once (key index = position in the list)
 *      and publish the process context (OTEP 4719).
 *   2. Attach a context to a thread when a request starts on it, update it
 *      in place as the active span changes, detach and free it at the end.
 *   3. New threads start with a copy of their creator's context: through
 *      pthread_create when libotelctx.so is preloaded or linked (build/example),
 *      through otelctx_pthread_create with the static archive
 *      (build/example-static, built with -DOTELCTX_EXAMPLE_EXPLICIT).
 *
 * Prints, as JSON lines on stdout, the context each thread ends up with
 * (tid -> trace/span/flags/attributes), then {"pid":...,"ready":true,...}
 * and waits for a line on stdin, EOF, SIGINT or SIGTERM, so an outside
 * reader can inspect the process meanwhile.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "otelctx.h"

#ifdef OTELCTX_EXAMPLE_EXPLICIT
#define CREATE_THREAD otelctx_pthread_create /* static archive: explicit helper */
#define MODE "explicit"
#else
#define CREATE_THREAD pthread_create /* interposed by libotelctx.so */
#define MODE "interposed"
#endif

enum { KEY_ROUTE, KEY_USER };
static const char *const KEYS[] = {"http.route", "user.id"};
#define NKEYS 2
#define NWORKERS 3

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int reported, stopping;

/* Deterministic ids: who = 0 (main) .. NWORKERS; version = span generation. */
static void trace_id_for(int who, uint8_t t[16]) {
  for (int i = 0; i < 16; i++) t[i] = (uint8_t)(0x10 * (who + 1) + i);
}
static void span_id_for(int who, int version, uint8_t s[8]) {
  for (int i = 0; i < 8; i++) s[i] = (uint8_t)(0x80 + 0x10 * version + who * 2 + i);
}

static void json_str(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* One JSON line describing the calling thread's current context. Called
 * with `lock` held. */
static void print_context(const char *role) {
  const otelctx_record *r = otelctx_current();
  printf("{\"tid\":%ld,\"role\":\"%s\"", (long)syscall(SYS_gettid), role);
  if (!r) {
    printf(",\"context\":null}\n");
  } else {
    printf(",\"trace_id\":\"");
    for (int i = 0; i < 16; i++) printf("%02x", r->trace_id[i]);
    printf("\",\"span_id\":\"");
    for (int i = 0; i < 8; i++) printf("%02x", r->span_id[i]);
    printf("\",\"trace_flags\":%u,\"attrs\":{", r->trace_flags);
    /* decode like a reader: last occurrence of a key index wins */
    const char *val[NKEYS] = {0};
    size_t len[NKEYS] = {0};
    for (size_t off = 0; off + 2 <= r->attrs_data_size;) {
      uint8_t k = r->attrs_data[off], n = r->attrs_data[off + 1];
      if (off + 2 + n > r->attrs_data_size) break;
      if (k < NKEYS) {
        val[k] = (const char *)&r->attrs_data[off + 2];
        len[k] = n;
      }
      off += 2 + (size_t)n;
    }
    int first = 1;
    for (int k = 0; k < NKEYS; k++)
      if (val[k]) {
        printf("%s\"%s\":", first ? "" : ",", KEYS[k]);
        json_str(val[k], len[k]);
        first = 0;
      }
    printf("}}\n");
  }
  fflush(stdout);
}

/* Report, then wait until the program is told to stop. */
static void report_and_wait(const char *role) {
  pthread_mutex_lock(&lock);
  print_context(role);
  reported++;
  pthread_cond_broadcast(&cond);
  while (!stopping) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
}

static void *child(void *arg) {
  /* Started with a copy of the worker's context: nothing to do. The copy
   * is freed by libotelctx when this thread ends. */
  report_and_wait((const char *)arg);
  return NULL;
}

static void *worker(void *arg) {
  int who = (int)(long)arg;
  static char child_role[NWORKERS + 1][32];
  char route[64], user[32], role[32];
  uint8_t t[16], s[8];

  /* A request starts on this thread: its own trace, not the inherited one. */
  trace_id_for(who, t);
  span_id_for(who, 1, s);
  snprintf(route, sizeof route, "/api/items/{id}");
  snprintf(user, sizeof user, "user-%d", who);
  otelctx_attr attrs[] = {{KEY_ROUTE, route, strlen(route)}, {KEY_USER, user, strlen(user)}};
  otelctx_record *rec = otelctx_new(t, s, 0x01, attrs, 2);
  otelctx_record *inherited = otelctx_attach(rec); /* returned to us: we free it */
  otelctx_free(inherited);

  /* A child span becomes active: update in place (valid-flag protocol). */
  span_id_for(who, 2, s);
  snprintf(route, sizeof route, "/api/items/{id}/detail");
  attrs[0].len = strlen(route);
  otelctx_update(t, s, 0x01, attrs, 2);

  pthread_t c = 0;
  int has_child = who % 2 == 1; /* workers 1 and 3 start a helper thread */
  snprintf(child_role[who], sizeof child_role[who], "worker%d.child", who);
  if (has_child && CREATE_THREAD(&c, NULL, child, child_role[who]) != 0) has_child = 0;

  snprintf(role, sizeof role, "worker%d", who);
  report_and_wait(role);
  if (has_child) pthread_join(c, NULL);

  /* The request ends: detach and free. */
  otelctx_free(otelctx_detach());
  return NULL;
}

int main(void) {
  /* 1. Process context, with the thread attribute key map. */
  otelctx_set_attribute_keys((const char *const *)KEYS, NKEYS);
  otelctx_kv resource[] = {{"service.name", "otelctx-example"}, {"service.version", "1.0.0"}};
  otelctx_kv extra[] = {{"example.mode", MODE}};
  if (otelctx_process_publish(resource, 2, extra, 1) != 0) perror("otelctx_process_publish");

  /* 2. A context on the main thread, then an in-place update. */
  uint8_t t[16], s[8];
  trace_id_for(0, t);
  span_id_for(0, 1, s);
  otelctx_attr attrs[] = {{KEY_ROUTE, "/", 1}, {KEY_USER, "root", 4}};
  otelctx_attach(otelctx_new(t, s, 0x01, attrs, 2));
  span_id_for(0, 2, s);
  attrs[0].value = "/main";
  attrs[0].len = 5;
  otelctx_update(t, s, 0x01, attrs, 2);

  /* Signals are taken synchronously by main through a signalfd. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

  /* 3. Worker threads (each starts with a copy of main's context). */
  pthread_t w[NWORKERS];
  for (long i = 0; i < NWORKERS; i++) CREATE_THREAD(&w[i], NULL, worker, (void *)(i + 1));

  int expected = NWORKERS + (NWORKERS + 1) / 2; /* workers 1 and 3 have a child */
  pthread_mutex_lock(&lock);
  while (reported < expected) pthread_cond_wait(&cond, &lock);
  print_context("main");
  pthread_mutex_unlock(&lock);
  printf("{\"pid\":%d,\"ready\":true,\"threads\":%d,\"mode\":\"%s\"}\n", (int)getpid(),
         expected + 1, MODE);
  fflush(stdout);

  struct pollfd p[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
  while (poll(p, 2, -1) < 0) {
  }

  pthread_mutex_lock(&lock);
  stopping = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < NWORKERS; i++) pthread_join(w[i], NULL);
  otelctx_free(otelctx_detach());
  otelctx_process_unpublish();
  printf("{\"exit\":true}\n");
  return 0;
}

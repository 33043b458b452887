/* pthread_create propagation through the LD_PRELOAD interposer.
 * Not linked against libotelctx: run as
 *   LD_PRELOAD=build/libotelctx.so build/tests/propagate
 * Prints one line per observation, in a deterministic order (threads are
 * joined before the next one starts). Run under valgrind to check that
 * every inherited copy is freed on return, pthread_exit and cancellation. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <unistd.h>

#include "preloaded_api.h"

static const otelctx_record *parent_rec; /* record of the creating thread */

static void say(const char *who, const otelctx_record *r) {
  char d[2000];
  describe(r, d, sizeof d);
  printf("%s %s\n", who, d);
  fflush(stdout);
}

/* Report the inherited context and whether it is a separate copy. */
static void inherited(const char *who, const otelctx_record *creator) {
  const otelctx_record *r = api.current();
  say(who, r);
  printf("%s copy=%s\n", who, r && r != creator ? "yes" : "no");
}

static void ids(uint8_t t[16], uint8_t s[8], uint8_t tb, uint8_t sb) {
  for (int i = 0; i < 16; i++) t[i] = (uint8_t)(tb + i);
  for (int i = 0; i < 8; i++) s[i] = (uint8_t)(sb + i);
}

static void *t_none(void *a) {
  (void)a;
  say("none-thread", api.current());
  return NULL;
}

static void *g1(void *a) {
  inherited("g1", a);
  uint8_t t[16], s[8];
  ids(t, s, 0x31, 0x41);
  otelctx_attr at[] = {{1, "/c", 2}};
  api.update(t, s, 1, at, 1);
  say("g1-updated", api.current());
  return NULL;
}

static void *c1(void *a) {
  inherited("c1", a);
  uint8_t t[16], s[8];
  ids(t, s, 0x11, 0x51); /* same trace, new span */
  otelctx_attr at[] = {{1, "/b", 2}};
  api.update(t, s, 1, at, 1);
  say("c1-updated", api.current());
  pthread_t g;
  pthread_create(&g, NULL, g1, (void *)api.current());
  pthread_join(g, NULL);
  say("c1-after-g1", api.current());
  return NULL;
}

static sem_t go, ready;

static void *c2(void *a) {
  (void)a;
  sem_wait(&go); /* the creator updates its own record meanwhile */
  say("c2", api.current());
  return NULL;
}

static void *c3(void *a) {
  inherited("c3", a);
  pthread_exit((void *)3);
}

static void *c4(void *a) {
  inherited("c4", a);
  fflush(stdout);
  sem_post(&ready);
  for (;;) pause(); /* cancellation point */
  return NULL;
}

static void *c5(void *a) {
  inherited("c5", a);
  otelctx_record *mine = api.detach(); /* ownership moves to us */
  api.free_(mine);
  say("c5-after-free", api.current());
  return NULL;
}

static void *g7(void *a) {
  inherited("g7", a);
  pthread_exit(NULL);
}

static void *c6(void *a) {
  inherited("c6", a);
  uint8_t t[16], s[8];
  ids(t, s, 0x61, 0x71);
  otelctx_record *own = api.new_(t, s, 0, NULL, 0);
  otelctx_record *prev = api.attach(own); /* the inherited copy, now ours */
  printf("c6 prev-is-inherited=%s\n", prev == a ? "no" : (prev ? "yes" : "null"));
  api.free_(prev);
  pthread_t g;
  pthread_create(&g, NULL, g7, own);
  pthread_join(g, NULL);
  say("c6-own", api.current());
  api.free_(api.detach());
  return NULL;
}

int main(void) {
  load_api();
  setvbuf(stdout, NULL, _IOLBF, 0);
  pthread_t t;
  void *ret;

  say("main-start", api.current());
  pthread_create(&t, NULL, t_none, NULL);
  pthread_join(t, NULL);

  uint8_t tr[16], sp[8];
  ids(tr, sp, 0x11, 0x21);
  otelctx_attr at[] = {{0, "GET", 3}, {1, "/a", 2}};
  otelctx_record *mine = api.new_(tr, sp, 1, at, 2);
  api.attach(mine);
  parent_rec = api.current();
  say("main", parent_rec);

  pthread_create(&t, NULL, c1, (void *)parent_rec);
  pthread_join(t, NULL);
  say("main-after-c1", api.current());

  sem_init(&go, 0, 0);
  sem_init(&ready, 0, 0);
  pthread_create(&t, NULL, c2, NULL);
  ids(tr, sp, 0x11, 0x29);
  otelctx_attr at2[] = {{0, "PUT", 3}};
  api.update(tr, sp, 1, at2, 1); /* in place, after c2 got its copy */
  say("main-updated", api.current());
  sem_post(&go);
  pthread_join(t, NULL);

  pthread_create(&t, NULL, c3, (void *)api.current());
  pthread_join(t, &ret);
  printf("c3 exit=%ld\n", (long)(intptr_t)ret);

  pthread_create(&t, NULL, c4, (void *)api.current());
  sem_wait(&ready);
  pthread_cancel(t);
  pthread_join(t, &ret);
  printf("c4 canceled=%s\n", ret == PTHREAD_CANCELED ? "yes" : "no");

  pthread_create(&t, NULL, c5, (void *)api.current());
  pthread_join(t, NULL);

  pthread_create(&t, NULL, c6, (void *)api.current());
  pthread_join(t, NULL);

  say("main-end", api.current());
  api.free_(api.detach());
  pthread_create(&t, NULL, t_none, NULL);
  pthread_join(t, NULL);
  printf("done\n");
  return 0;
}

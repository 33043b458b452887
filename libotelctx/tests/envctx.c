/* TRACEPARENT from the environment, through LD_PRELOAD (not linked):
 *   TRACEPARENT=00-...-...-01 LD_PRELOAD=build/libotelctx.so build/tests/envctx
 * Prints the main thread's context and the context a new thread starts with. */
#define _GNU_SOURCE
#include <pthread.h>

#include "preloaded_api.h"

static void *child(void *a) {
  (void)a;
  char d[2000];
  describe(api.current(), d, sizeof d);
  printf("child %s\n", d);
  return NULL;
}

int main(void) {
  load_api();
  char d[2000];
  describe(api.current(), d, sizeof d);
  printf("main %s\n", d);
  fflush(stdout);
  pthread_t t;
  pthread_create(&t, NULL, child, NULL);
  pthread_join(t, NULL);
  return 0;
}

/* The interposer when dlsym(RTLD_NEXT, "pthread_create") fails.
 * Linked with libc *before* libotelctx, so no object after libotelctx in
 * the symbol scope defines pthread_create. The program's own
 * pthread_create binds to libc; the test calls libotelctx's definition
 * (found through its handle) twice: both return EAGAIN, and exactly one
 * warning line appears on stderr. Nothing crashes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "otelctx.h"

static void *noop(void *a) { return a; }

int main(void) {
  void *h = dlopen("libotelctx.so", RTLD_NOW | RTLD_NOLOAD);
  if (!h) {
    printf("libotelctx not loaded\n");
    return 1;
  }
  void *p = dlsym(h, "pthread_create");
  int (*ours)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  memcpy(&ours, &p, sizeof p);
  int (*libc_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) = pthread_create;
  printf("distinct=%s\n", p && (void *)libc_create != p ? "yes" : "no");
  pthread_t t;
  for (int i = 0; i < 2; i++) {
    int rc = ours(&t, NULL, noop, NULL);
    printf("call%d=%s\n", i + 1, rc == EAGAIN ? "EAGAIN" : rc == 0 ? "0" : "other");
    if (rc == 0) pthread_join(t, NULL);
  }
  /* the explicit helper takes the same path */
  uint8_t tr[16] = {1}, sp[8] = {1};
  otelctx_record *r = otelctx_new(tr, sp, 1, NULL, 0);
  otelctx_attach(r);
  int rc = otelctx_pthread_create(&t, NULL, noop, NULL);
  printf("helper=%s\n", rc == EAGAIN ? "EAGAIN" : rc == 0 ? "0" : "other");
  otelctx_free(otelctx_detach());
  /* libc's own pthread_create still works */
  rc = pthread_create(&t, NULL, noop, NULL);
  if (rc == 0) pthread_join(t, NULL);
  printf("libc=%d\n", rc);
  return 0;
}

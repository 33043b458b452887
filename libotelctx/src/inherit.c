/* Starting threads with a copy of the creating thread's context. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct start {
  void *(*fn)(void *);
  void *arg;
  otelctx_record *rec;
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static int key_ok;

/*
 * Thread-exit cleanup (a pthread key destructor runs on return from the
 * start routine, on pthread_exit and after cancellation). The inherited copy
 * carries OTELCTX_BOX_INHERITED for as long as it stays in the slot;
 * otelctx_attach/otelctx_detach clear the flag when they hand it to the
 * caller. So: flagged and attached -> still ours -> detach and free.
 */
static void on_thread_exit(void *value) {
  (void)value;
  otelctx_record *cur = otelctx__slot_load();
  if (cur && (otelctx__box(cur)->flags & OTELCTX_BOX_INHERITED)) {
    otelctx__slot_store(NULL);
    otelctx_free(cur);
  }
}

static void make_key(void) { key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0; }

static void *start_inheriting(void *p) {
  struct start s = *(struct start *)p;
  free(p);
  /* Registering the key value is what makes the destructor run; if that
   * fails the thread starts without the copy rather than leaking it. */
  if (pthread_setspecific(exit_key, s.rec) == 0) {
    otelctx__box(s.rec)->flags |= OTELCTX_BOX_INHERITED;
    otelctx__slot_store(s.rec);
  } else {
    otelctx_free(s.rec);
  }
  return s.fn(s.arg);
}

int otelctx__create_inheriting(otelctx__create_fn real, pthread_t *thread,
                               const pthread_attr_t *attr, void *(*start_routine)(void *),
                               void *arg, const otelctx_record *cur) {
  pthread_once(&key_once, make_key);
  struct start *s = NULL;
  otelctx_record *copy = NULL;
  if (key_ok && cur && (s = malloc(sizeof *s)) && (copy = otelctx_clone(cur))) {
    s->fn = start_routine;
    s->arg = arg;
    s->rec = copy;
    int rc = real(thread, attr, start_inheriting, s);
    if (rc != 0) {
      otelctx_free(copy);
      free(s);
    }
    return rc;
  }
  /* No key, no context or no memory: start the thread without a context. */
  free(s);
  return real(thread, attr, start_routine, arg);
}

int otelctx_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                           void *(*start_routine)(void *), void *arg) {
  otelctx__create_fn real = otelctx__real_create();
  if (!real) return EAGAIN;
  const otelctx_record *cur = otelctx__slot_load();
  if (!cur) return real(thread, attr, start_routine, arg);
  return otelctx__create_inheriting(real, thread, attr, start_routine, arg, cur);
}

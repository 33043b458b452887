/*
 * Shared-library only: the pthread_create interposer and the load-time
 * constructor (process context and TRACEPARENT from the environment).
 *
 * Interposition works whenever this library precedes libc in the global
 * symbol scope: with LD_PRELOAD, or when a program is linked against
 * libotelctx.so. Our pthread_create is an unversioned definition, which the
 * dynamic linker accepts for a program's pthread_create@GLIBC_x references.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static void *_Atomic real_create_ptr;
static atomic_int real_create_warned;

OTELCTX_API int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                               void *(*start_routine)(void *), void *arg);

static otelctx__create_fn resolve(void) {
  void *p = atomic_load_explicit(&real_create_ptr, memory_order_acquire);
  if (!p) {
    p = dlsym(RTLD_NEXT, "pthread_create");
    otelctx__create_fn self = pthread_create;
    if (p && memcmp(&p, &self, sizeof p) == 0) p = NULL; /* never call ourselves */
    if (p) atomic_store_explicit(&real_create_ptr, p, memory_order_release);
  }
  otelctx__create_fn f;
  memcpy(&f, &p, sizeof f); /* object -> function pointer, as dlsym requires */
  return f;
}

otelctx__create_fn otelctx__real_create(void) {
  otelctx__create_fn f = resolve();
  if (!f && !atomic_exchange(&real_create_warned, 1))
    otelctx__warn("libotelctx: dlsym(RTLD_NEXT, \"pthread_create\") failed; "
                  "pthread_create returns EAGAIN");
  return f;
}

/* The interposer. Nothing attached: straight to libc (one TLS load and a
 * predictable branch more than a direct call). Otherwise the new thread
 * starts with a copy of the creator's record, freed when it ends. */
int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start_routine)(void *),
                   void *arg) {
  otelctx__create_fn real = otelctx__real_create();
  if (__builtin_expect(!real, 0)) return EAGAIN;
  const otelctx_record *cur = otelctx__slot_load();
  if (__builtin_expect(cur == NULL, 1)) return real(thread, attr, start_routine, arg);
  return otelctx__create_inheriting(real, thread, attr, start_routine, arg, cur);
}

/* process.executable.name: base name of /proc/self/exe (semconv), else the
 * name the program was invoked with. */
static void executable_name(char *out, size_t cap) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  const char *name = NULL;
  if (n > 0) {
    path[n] = 0;
    char *slash = strrchr(path, '/');
    name = slash ? slash + 1 : path;
  }
  if (!name || !*name) name = program_invocation_short_name;
  if (!name) name = "";
  size_t len = strnlen(name, cap - 1);
  memcpy(out, name, len);
  out[len] = 0;
}

static void publish_from_env(void) {
  otelctx_kv *env = NULL;
  int nenv = 0;
  const char *ra = getenv("OTEL_RESOURCE_ATTRIBUTES");
  if (ra && *ra) {
    nenv = otelctx__parse_resource_attributes(ra, &env);
    if (nenv < 0) {
      otelctx__warn("libotelctx: ignoring malformed OTEL_RESOURCE_ATTRIBUTES");
      nenv = 0;
      env = NULL;
    }
  }
  /* service.name: OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES;
   * otherwise "unknown_service:" + process.executable.name (semconv). */
  char fallback[300];
  const char *service = getenv("OTEL_SERVICE_NAME");
  if (!service || !*service) {
    service = NULL;
    for (int i = 0; i < nenv; i++)
      if (strcmp(env[i].key, "service.name") == 0) service = env[i].value;
  }
  if (!service) {
    char exe[256];
    executable_name(exe, sizeof exe);
    snprintf(fallback, sizeof fallback, *exe ? "unknown_service:%s" : "unknown_service", exe);
    service = fallback;
  }
  otelctx_kv *res = calloc((size_t)nenv + 1, sizeof *res);
  if (res) {
    size_t n = 0;
    res[n++] = (otelctx_kv){"service.name", service};
    for (int i = 0; i < nenv; i++)
      if (strcmp(env[i].key, "service.name") != 0) res[n++] = env[i];
    if (otelctx_process_publish(res, n, NULL, 0) < 0)
      otelctx__warn("libotelctx: could not publish the process context");
    free(res);
  }
  otelctx__free_kvs(env, (size_t)nenv);
}

static void attach_traceparent_from_env(void) {
  const char *tp = getenv("TRACEPARENT");
  if (!tp || !*tp) return;
  uint8_t trace_id[16], span_id[8], flags;
  if (otelctx_parse_traceparent(tp, trace_id, span_id, &flags) < 0) {
    otelctx__warn("libotelctx: ignoring malformed TRACEPARENT");
    return;
  }
  /* TRACESTATE has no place in the record; it is not read. Only the main
   * thread gets the context (a dlopen from another thread does not). */
  if ((pid_t)syscall(SYS_gettid) != getpid()) return;
  otelctx_record *rec = otelctx_new(trace_id, span_id, flags, NULL, 0);
  if (rec) otelctx_attach(rec);
}

__attribute__((constructor)) static void otelctx_preload_init(void) {
  (void)resolve();
  const char *off = getenv("OTELCTX_NO_PROCESS_CONTEXT");
  if (!(off && strcmp(off, "1") == 0)) publish_from_env();
  attach_traceparent_from_env();
}

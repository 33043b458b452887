/* fork(): the child must not inherit the OTEL_CTX mapping (MADV_DONTFORK),
 * and must be able to publish its own context; the parent keeps its own. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "otelctx.h"

/* Count OTEL_CTX mappings and return the service.name-bearing payload's
 * first resource value (by reading our own header). */
static int count(const otelctx_process_header **hdr) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int n = 0;
  while (f && fgets(line, sizeof line, f)) {
    if (strstr(line, "OTEL_CTX")) {
      n++;
      if (hdr) *hdr = (const void *)(uintptr_t)strtoull(line, NULL, 16);
    }
  }
  if (f) fclose(f);
  return n;
}

static int payload_has(const otelctx_process_header *h, const char *s) {
  return memmem((const void *)(uintptr_t)h->payload, h->payload_size, s, strlen(s)) != NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  otelctx_kv parent[] = {{"service.name", "parent-svc"}};
  if (otelctx_process_publish(parent, 1, NULL, 0) < 0) return 1;
  const otelctx_process_header *h = NULL;
  printf("parent.mappings=%d\n", count(&h));
  pid_t pid = fork();
  if (pid == 0) {
    printf("child.mappings-after-fork=%d\n", count(NULL));
    int upd = otelctx_process_update(parent, 1, NULL, 0);
    printf("child.update-before-publish=%d\n", upd);
    otelctx_kv child[] = {{"service.name", "child-svc"}};
    int rc = otelctx_process_publish(child, 1, NULL, 0);
    const otelctx_process_header *ch = NULL;
    int n = count(&ch);
    printf("child.publish=%d mappings=%d child-payload=%d\n", rc, n,
           n == 1 && payload_has(ch, "child-svc") && !payload_has(ch, "parent-svc"));
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  h = NULL;
  int n = count(&h);
  printf("parent.after-child mappings=%d parent-payload=%d\n", n,
         n == 1 && payload_has(h, "parent-svc"));
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

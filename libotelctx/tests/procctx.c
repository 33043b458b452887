/* Process context read from outside. Publishes a known context, prints
 * {"pid":N,"ready":true}, then obeys commands on stdin (one per line):
 *   update        replace resource and attributes (update protocol)
 *   keys          append a thread attribute key (republishes)
 *   hammer <ms>   alternate between two payloads as fast as possible
 *   unpublish     withdraw the context
 *   exit / EOF    quit
 * Each command answers with one line on stdout. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "otelctx.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *keys[] = {"http.route", "user.id", "tenant"};
  otelctx_set_attribute_keys(keys, 2);
  otelctx_kv res[] = {{"service.name", "procctx-test"}, {"service.version", "1.2.3"},
                      {"service.instance.id", "instance-0001"}};
  otelctx_kv attrs[] = {{"example.extra", "yes"}};
  if (otelctx_process_publish(res, 3, attrs, 1) < 0) {
    perror("publish");
    return 1;
  }
  printf("{\"pid\":%d,\"ready\":true}\n", (int)getpid());
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "update", 6) == 0) {
      otelctx_kv r2[] = {{"service.name", "procctx-test"}, {"service.version", "2.0.0"},
                         {"deployment.environment.name", "staging"}};
      otelctx_kv a2[] = {{"example.extra", "no"}, {"example.more", "\xc3\xa9t\xc3\xa9"}};
      printf(otelctx_process_update(r2, 3, a2, 2) == 0 ? "updated\n" : "update-failed\n");
    } else if (strncmp(line, "keys", 4) == 0) {
      printf(otelctx_set_attribute_keys(keys, 3) == 0 ? "keys\n" : "keys-failed\n");
    } else if (strncmp(line, "hammer", 6) == 0) {
      double end = now_ms() + atof(line + 6);
      char a[101], b[301];
      memset(a, 'A', 100);
      a[100] = 0;
      memset(b, 'B', 300);
      b[300] = 0;
      otelctx_kv ra[] = {{"service.name", "variant-a"}, {"filler", a}};
      otelctx_kv rb[] = {{"service.name", "variant-b"}, {"filler", b}, {"extra", "b"}};
      long n = 0;
      while (now_ms() < end) {
        int rc = (n & 1) ? otelctx_process_update(rb, 3, NULL, 0) : otelctx_process_update(ra, 2, NULL, 0);
        if (rc != 0) {
          printf("hammer-failed\n");
          break;
        }
        n++;
      }
      printf("hammered %ld\n", n);
    } else if (strncmp(line, "unpublish", 9) == 0) {
      printf(otelctx_process_unpublish() == 0 ? "unpublished\n" : "unpublish-failed\n");
    } else if (strncmp(line, "exit", 4) == 0) {
      break;
    }
  }
  return 0;
}

/* Small shared helpers. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

void otelctx__warn(const char *msg) {
  struct iovec iov[2] = {{(void *)msg, strlen(msg)}, {(void *)"\n", 1}};
  ssize_t r = writev(STDERR_FILENO, iov, 2); /* one write: one line */
  (void)r;
}

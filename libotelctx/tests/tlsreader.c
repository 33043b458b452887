/* A minimal external thread-context reader (no libotelctx code), standing
 * in for the eBPF profiler: for every thread of <pid> it stops the thread
 * (PTRACE_SEIZE + PTRACE_INTERRUPT), takes the thread pointer (fs_base),
 * reads the otel_thread_ctx_v1 slot at fs_base + <tp offset>, and, when the
 * pointer is not NULL, the 28-byte record header and then attrs_data_size
 * bytes, before letting the thread go. The TP offset is computed by the
 * caller from the ELF file and the TLSDESC descriptor (or PT_TLS).
 *
 *   tlsreader <pid> <signed tp offset>
 * One JSON line per thread. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

static int rd(pid_t pid, uint64_t addr, void *buf, size_t n) {
  struct iovec l = {buf, n}, r = {(void *)(uintptr_t)addr, n};
  return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  pid_t pid = atoi(argv[1]);
  int64_t off = strtoll(argv[2], NULL, 0);
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", pid);
  DIR *d = opendir(dir);
  if (!d) return 1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    pid_t tid = atoi(e->d_name);
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0 || ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
      fprintf(stderr, "ptrace %d: %s\n", tid, strerror(errno));
      rc = 1;
      continue;
    }
    int st;
    waitpid(tid, &st, __WALL);
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, tid, 0, &regs);
    uint64_t fs = regs.fs_base, ptr = 0;
    uint8_t rec[28 + 65535];
    int ok = rd(pid, fs + (uint64_t)off, &ptr, 8) == 0;
    char *hex = NULL;
    if (ok && ptr) {
      ok = rd(pid, ptr, rec, 28) == 0;
      uint16_t size;
      memcpy(&size, rec + 26, 2);
      size_t n = 28;
      if (ok && rec[24] == 1 && size) {
        ok = rd(pid, ptr + 28, rec + 28, size) == 0;
        n += size;
      }
      hex = malloc(2 * n + 1);
      for (size_t i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", rec[i]);
    }
    ptrace(PTRACE_DETACH, tid, 0, 0);
    if (!ok) rc = 1;
    printf("{\"tid\":%d,\"fsbase\":\"0x%" PRIx64 "\",\"ptr\":\"0x%" PRIx64 "\",\"record\":%s%s%s}\n",
           tid, fs, ptr, hex ? "\"" : "", hex ? hex : "null", hex ? "\"" : "");
    free(hex);
  }
  closedir(d);
  return rc;
}

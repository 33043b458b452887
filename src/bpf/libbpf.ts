// Thin FFI bindings to libbpf 1.x and the few libc calls the loader needs.
// koffi pointers are opaque values: they never leave this folder.
import koffi from 'koffi';
import { UserError, EXIT } from '../util/errors';
import { log } from '../util/log';

function loadLib(names: string[], what: string): ReturnType<typeof koffi.load> {
  for (const n of names) {
    try { return koffi.load(n); } catch { /* try the next name */ }
  }
  throw new UserError(`cannot load ${what} (${names.join(' or ')}): install libbpf1 (make setup does)`, EXIT.KERNEL);
}

const bpf = loadLib(['libbpf.so.1', 'libbpf.so'], 'libbpf');
const libc = loadLib(['libc.so.6'], 'libc');

koffi.opaque('bpf_object');
koffi.opaque('bpf_program');
koffi.opaque('bpf_map');
koffi.opaque('bpf_link');

export const UprobeOpts = koffi.struct('bpf_uprobe_opts', {
  sz: 'size_t', ref_ctr_offset: 'size_t', bpf_cookie: 'uint64_t', retprobe: 'bool', func_name: 'const char *',
});

export const lib = {
  open_file: bpf.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
  object_load: bpf.func('int bpf_object__load(bpf_object *obj)'),
  object_close: bpf.func('void bpf_object__close(bpf_object *obj)'),
  find_program: bpf.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
  find_map: bpf.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
  set_expected_attach_type: bpf.func('int bpf_program__set_expected_attach_type(bpf_program *p, int type)'),
  program_fd: bpf.func('int bpf_program__fd(bpf_program *p)'),
  map_fd: bpf.func('int bpf_map__fd(bpf_map *m)'),
  map_set_max_entries: bpf.func('int bpf_map__set_max_entries(bpf_map *m, uint32_t n)'),
  map_reuse_fd: bpf.func('int bpf_map__reuse_fd(bpf_map *m, int fd)'),
  map_lookup_elem: bpf.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
  map_update_elem: bpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
  attach_uprobe_opts: bpf.func('bpf_link *bpf_program__attach_uprobe_opts(bpf_program *p, int pid, const char *path, size_t off, const bpf_uprobe_opts *opts)'),
  program_type: bpf.func('int bpf_program__type(bpf_program *p)'),
  attach_raw_tracepoint: bpf.func('bpf_link *bpf_program__attach_raw_tracepoint(bpf_program *p, const char *tp_name)'),
  map_delete_elem: bpf.func('int bpf_map_delete_elem(int fd, const void *key)'),
  map_get_next_key: bpf.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
  link_destroy: bpf.func('int bpf_link__destroy(bpf_link *l)'),
  num_possible_cpus: bpf.func('int libbpf_num_possible_cpus()'),
  set_print: bpf.func('void *libbpf_set_print(void *fn)'),
  prog_attach: bpf.func('int bpf_prog_attach(int prog_fd, int attachable_fd, int type, unsigned int flags)'),
  prog_detach2: bpf.func('int bpf_prog_detach2(int prog_fd, int attachable_fd, int type)'),
  link_create: bpf.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)'),
};

export const c = {
  syscall_bpf: libc.func('long syscall(long nr, int cmd, void *attr, uint32_t size)'),
  mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
  munmap: libc.func('int munmap(void *addr, size_t len)'),
  close: libc.func('int close(int fd)'),
  open: libc.func('int open(const char *path, int flags)'),
  vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t n, const char *fmt, void *ap)'),
  getpagesize: libc.func('int getpagesize()'),
  pthread_sigmask: libc.func('int pthread_sigmask(int how, const uint8_t *set, _Out_ uint8_t *oldset)'),
};

const SIG_BLOCK = 0, SIG_SETMASK = 2;
/** sigset_t of glibc on x86-64: 1024 bits; every bit set = every signal (the kernel never blocks SIGKILL/SIGSTOP). */
const ALL_SIGNALS = new Uint8Array(128).fill(0xff);

/**
 * Runs `fn` with this thread's signals blocked, then restores the mask (a
 * signal that arrived meanwhile is delivered then). The verifier aborts a
 * load with EAGAIN whenever a signal is pending, so a periodic one (a
 * profiler's SIGPROF) would make every load of a large program fail.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const old = new Uint8Array(128);
  const blocked = c.pthread_sigmask(SIG_BLOCK, ALL_SIGNALS, old) === 0;
  try {
    return fn();
  } finally {
    if (blocked) c.pthread_sigmask(SIG_SETMASK, old, null);
  }
}

export function errno(): number { return koffi.errno(); }

export const SYS_bpf = 321;
export const BPF_LINK_CREATE = 28;
export const BPF_TRACE_UPROBE_MULTI = 48;
export const BPF_F_UPROBE_MULTI_RETURN = 1;
export const BPF_PROG_TYPE_KPROBE = 2;

// libbpf's own log (verifier output, CO-RE relocations) goes through our logger,
// so a load failure can show the verifier's reason.
const PrintFn = koffi.proto('int libbpf_print_fn(int level, const char *fmt, void *ap)');
let printCb: unknown = null;
export const libbpfLog: string[] = [];
export function captureLibbpfLog(): void {
  if (printCb) return;
  printCb = koffi.register((level: number, fmt: string, ap: unknown) => {
    const buf = Buffer.alloc(4096);
    const n = c.vsnprintf(buf, buf.length, fmt, ap);
    const line = buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString('utf8').trimEnd();
    libbpfLog.push(line);
    if (libbpfLog.length > 400) libbpfLog.shift();
    if (level <= 0) log.debug(`libbpf: ${line}`); else log.verbose(`libbpf: ${line}`);
    return 0;
  }, koffi.pointer(PrintFn));
  lib.set_print(printCb);
}

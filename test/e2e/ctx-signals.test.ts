// Reading thread contexts must be invisible to the target: a signal that
// arrives while a thread is ptrace-stopped for a read must still be delivered,
// and a job-control-stopped process must stay stopped. The target is a small C
// program (compiled here) that defines the thread-context TLS symbol itself and
// counts a queued real-time signal; real-time signals queue, so the count must
// match exactly what was sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Output } from '../helpers/procs';
import { RemoteMemory } from '../../src/ctx/remote';
import { findTlsModules, readThreadRecords } from '../../src/ctx/thread-context';

const SIGNALS = 20_000;

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The OTEP 4947 thread-context slot (local-exec in this executable). */
__attribute__((used)) __thread void *otel_thread_ctx_v1;

static volatile sig_atomic_t received;
static void on_signal(int sig) { (void)sig; received++; }

static int receiver(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGRTMIN + 1, &sa, NULL) != 0) return 1;
  printf("ready %d\n", getpid());
  fflush(stdout);
  /* Spin (so signals arrive both in user mode and in syscalls) until stdin closes. */
  for (;;) {
    for (volatile int i = 0; i < 20000; i++) {}
    struct pollfd p = { .fd = 0, .events = POLLIN };
    if (poll(&p, 1, 0) > 0) {
      char buf[64];
      ssize_t n = read(0, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0 && errno != EINTR && errno != EAGAIN) break;
    }
  }
  printf("received %d\n", (int)received);
  return 0;
}

/* sigqueue()s at least n signals to pid, retrying while the target's queue is
 * full, and goes on until stdin closes (the test closes it once it has read
 * enough under the flow: a loaded machine must not end the flow first). */
static int sender(pid_t pid, int n) {
  union sigval v = { .sival_int = 0 };
  long retries = 0;
  int sent = 0, open = 1;
  while (sent < n || open) {
    while (sigqueue(pid, SIGRTMIN + 1, v) != 0) {
      if (errno != EAGAIN) { perror("sigqueue"); return 1; }
      retries++;
      usleep(50);
    }
    sent++;
    if ((sent & 7) == 0) {
      usleep(200); /* keep signals flowing for a while */
      struct pollfd p = { .fd = 0, .events = POLLIN };
      if (open && poll(&p, 1, 0) > 0) {
        char buf[64];
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) open = 0;
      }
    }
  }
  printf("sent %d retries %ld\n", sent, retries);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "send") == 0) return sender((pid_t)atoi(argv[2]), atoi(argv[3]));
  return receiver();
}
`;

let dir = '';
let exe = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otel-ctx-signals-'));
  fs.writeFileSync(path.join(dir, 'sigcount.c'), SOURCE);
  exe = path.join(dir, 'sigcount');
  execFileSync('gcc', ['-O2', '-o', exe, path.join(dir, 'sigcount.c')], { stdio: 'inherit' });
});

after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

interface Started { proc: ChildProcess; out: Output; exited: Promise<number | null> }

function start(args: string[]): Started {
  const proc = spawn(exe, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new Output(proc.stdout);
  const err = new Output(proc.stderr);
  // 'close': the process exited and its output has been read to the end.
  const exited = new Promise<number | null>((r) => proc.on('close', (c) => r(c)));
  exited.then((c) => { if (c !== 0 && c !== null) process.stderr.write(`${exe} ${args.join(' ')} exited ${c}: ${err.text}\n`); });
  return { proc, out, exited };
}

async function startReceiver(): Promise<Started & { pid: number }> {
  const r = start([]);
  const m = await Promise.race([
    r.out.wait(/^ready (\d+)$/m, 20_000),
    r.exited.then((c) => { throw new Error(`receiver exited with ${c}`); }),
  ]);
  return { ...r, pid: Number(m[1]) };
}

async function received(r: Started): Promise<number> {
  r.proc.stdin!.end();
  const m = await r.out.wait(/^received (\d+)$/m, 20_000);
  await r.exited;
  return Number(m[1]);
}

function processState(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

test(`no queued signal is lost while ctx reads stop the thread (${SIGNALS} SIGRTMIN+1)`, async () => {
  const rcv = await startReceiver();
  try {
    const mem = new RemoteMemory(rcv.pid);
    try {
      const mods = findTlsModules(rcv.pid, mem);
      assert.equal(mods.length, 1);
      assert.equal(mods[0].locator.model, 'local-exec');
      const snd = start(['send', String(rcv.pid), String(SIGNALS)]);
      let senderDone = false;
      snd.exited.then(() => { senderDone = true; });
      let reads = 0;
      while (!senderDone) {
        if (reads >= 2000) snd.proc.stdin!.end();
        for (let i = 0; i < 50; i++, reads++) {
          const recs = readThreadRecords(rcv.pid, mods[0], mem, []);
          assert.equal(recs.length, 1);
          assert.equal(recs[0].error, undefined, recs[0].error);
          assert.equal(recs[0].recordAddress, 0n);
        }
        await yieldToLoop();
      }
      assert.equal(await snd.exited, 0);
      const sent = Number(/^sent (\d+) /m.exec(snd.out.text)?.[1]);
      assert.ok(sent >= SIGNALS, snd.out.text);
      const got = await received(rcv);
      process.stderr.write(`ctx-signals: ${reads} reads, ${got}/${sent} signals received (${sent - got} lost); sender: ${snd.out.text.trim()}\n`);
      assert.ok(reads >= 2000, `only ${reads} reads happened while signals were sent`);
      assert.equal(got, sent, `${sent - got} of ${sent} queued signals were lost over ${reads} reads`);
    } finally {
      mem.close();
    }
  } finally {
    if (rcv.proc.exitCode === null) rcv.proc.kill('SIGKILL');
  }
});

test('a job-control-stopped process stays stopped after a read and runs again on SIGCONT', async () => {
  const rcv = await startReceiver();
  try {
    const mem = new RemoteMemory(rcv.pid);
    try {
      const mods = findTlsModules(rcv.pid, mem);
      assert.equal(mods.length, 1);
      process.kill(rcv.pid, 'SIGSTOP');
      for (let i = 0; i < 200 && processState(rcv.pid) !== 'T'; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(processState(rcv.pid), 'T');
      for (let i = 0; i < 20; i++) {
        const recs = readThreadRecords(rcv.pid, mods[0], mem, []);
        assert.equal(recs.length, 1);
        assert.equal(recs[0].error, undefined, recs[0].error);
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(processState(rcv.pid), 'T', 'still stopped after the reads');
      process.kill(rcv.pid, 'SIGCONT');
    } finally {
      mem.close();
    }
    // It runs again: signals sent after SIGCONT are all handled.
    const snd = start(['send', String(rcv.pid), '100']);
    snd.proc.stdin!.end(); // exactly 100: the sender stops at its count once stdin is closed
    assert.equal(await snd.exited, 0);
    assert.equal(await received(rcv), 100);
  } finally {
    if (rcv.proc.exitCode === null) rcv.proc.kill('SIGKILL');
  }
});

// Exe mode when the file at the target path changes under the agent. The old
// build's offsets must never reach a process of the new build: a uprobe at a
// stale offset would put an int3 in the middle of an instruction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, runAgentSync } from '../helpers/procs';

/** File offsets of the probes the agent attaches (status ready; standby ones are not attached). */
function attachedSites(bin: string): number[] {
  const r = runAgentSync(['inspect', bin, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  return j.modules.flatMap((m: { probes: { status: string; sites: number[] }[] }) => m.probes.filter((p) => p.status === 'ready').flatMap((p) => p.sites));
}

/** The bytes a process has mapped at these file offsets of its executable. */
function mappedBytes(pid: number, exe: string, offsets: number[]): number[] {
  const ino = fs.statSync(exe).ino;
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
    .map((l) => /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ (\d+)/.exec(l))
    .filter((m): m is RegExpExecArray => !!m && Number(m[4]) === ino)
    .map((m) => ({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), off: parseInt(m[3], 16) }));
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    return offsets.map((o) => {
      const m = maps.find((x) => o >= x.off && o < x.off + (x.end - x.start));
      assert.ok(m, `offset ${o} is mapped`);
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, m.start + (o - m.off));
      return b[0];
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** A process of the current build carries int3 exactly at the new sites, never at stale ones. */
function assertProbeBytes(pid: number, exe: string, oldSites: number[], newSites: number[]): void {
  const stale = oldSites.filter((o) => !newSites.includes(o));
  const file = fs.readFileSync(exe);
  assert.deepEqual(mappedBytes(pid, exe, stale), stale.map((o) => file[o]), 'no int3 at an old offset');
  assert.deepEqual(mappedBytes(pid, exe, newSites), newSites.map(() => 0xcc), 'int3 at every new site');
}

test('a build written in place over the target loses the old probes and gets its own', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exe-replace-'));
  const exe = path.join(dir, 'svc');
  fs.copyFileSync(serviceBinary('hyper014-server'), exe);
  fs.chmodSync(exe, 0o755);
  const oldSites = attachedSites(exe);
  const recv = await startOtlpReceiver({ grpc: true });
  const agent = await attachAgent(['--exe', exe, '--endpoint', recv.grpcEndpoint]);
  try {
    const ino = fs.statSync(exe).ino;
    // An in-place rewrite, as `cp new exe` does when nothing runs it: same inode.
    fs.writeFileSync(exe, fs.readFileSync(serviceBinary('demo-service')));
    assert.equal(fs.statSync(exe).ino, ino, 'same inode');
    await agent.stderr.wait(/modified in place/, 5_000);
    await agent.stderr.wait(/a new build; probes attached/, 5_000);
    const newSites = attachedSites(exe);

    const svc = await startService(exe);
    try {
      assertProbeBytes(svc.pid, exe, oldSites, newSites);
      const res = await rawExchange(svc.port, ['GET /fail HTTP/1.1\r\nHost: x\r\n\r\n'], 1);
      assert.equal(res[0].status, 500);
      const [span] = await recv.waitForSpans(1, 15_000);
      assert.equal(span.attributes['http.response.status_code'], 500);
      assert.equal(span.resource['process.pid'], svc.pid);
    } finally {
      await svc.stop();
    }
  } finally {
    assert.equal(await agent.stop(), 0, agent.stderr.text);
    await recv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a build renamed into place, then rewritten in place: each change is followed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exe-rename-'));
  const exe = path.join(dir, 'svc');
  fs.copyFileSync(serviceBinary('demo-service'), exe);
  fs.chmodSync(exe, 0o755);
  const recv = await startOtlpReceiver({ grpc: true });
  const agent = await attachAgent(['--exe', exe, '--endpoint', recv.grpcEndpoint]);
  try {
    // A deploy by rename: a new inode at the path.
    const staged = path.join(dir, 'svc.new');
    fs.copyFileSync(serviceBinary('hyper014-server'), staged);
    fs.chmodSync(staged, 0o755);
    fs.renameSync(staged, exe);
    await agent.stderr.wait(/a new build; probes attached/, 5_000);
    const mark = agent.stderr.text.length;
    // Then that new file is rewritten in place.
    const oldSites = attachedSites(exe);
    fs.writeFileSync(exe, fs.readFileSync(serviceBinary('demo-service')));
    await agent.stderr.wait(/modified in place/, 5_000, mark);
    await agent.stderr.wait(/a new build; probes attached/, 5_000, mark);
    const newSites = attachedSites(exe);
    const svc = await startService(exe);
    try {
      assertProbeBytes(svc.pid, exe, oldSites, newSites);
      await rawExchange(svc.port, ['GET /users/3 HTTP/1.1\r\nHost: x\r\n\r\n'], 1);
      const [span] = await recv.waitForSpans(1, 15_000);
      assert.equal(span.attributes['url.path'], '/users/3');
      assert.equal(span.resource['process.pid'], svc.pid);
    } finally {
      await svc.stop();
    }
  } finally {
    assert.equal(await agent.stop(), 0, agent.stderr.text);
    await recv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// tokio spawns: which task spawned which, so a task spawned while a request
// is handled (tokio::spawn, nested; spawn_blocking) inherits the request's
// server span (src/spans/context.ts, `lineage` keys), and its client calls
// get that span as parent.
//
// Why these functions (README.md here; the notes' rust-probe-points.md §5):
//   OwnedTasks<S>::bind_inner is generic over the scheduler only, so it is
//   instantiated inside tokio (one instance per scheduler: multi-thread,
//   current-thread) and kept out of line ("the part of bind that's the same
//   for every type of future"); every tokio::spawn and spawn_local passes
//   through it, on the spawning thread, with the new task's Header.
//   blocking::pool::Spawner::spawn_task (NG) is the same for spawn_blocking.
//   task::Id::next() is the other candidate, but tiny and inlined; and
//   TaskHooks::spawn (NG) starts with a `mov` (single-stepped, 9-14 µs),
//   where both chosen functions start with a push (emulated).
//
// Hits: 1 per spawned task (async or blocking), none per poll.
import type { ProbeModule } from '../../plan/module';
import { BIND_INNER, spawnConfig } from './offsets';

export const tokioSpawnModule: ProbeModule = {
  name: 'tokio-spawn',
  scope: 'otel-rust-agent/tokio',
  bpfObject: 'tokio-spawn.bpf.o',
  // bind_inner exists since tokio 1.32.
  crate: { crate: 'tokio', min: '1.32.0', below: '2.0.0' },
  probes: [
    {
      id: 'spawn',
      symbol: BIND_INNER,
      site: 'entry',
      program: 'tokio_spawn',
      config: spawnConfig,
      purpose: 'a task is spawned (tokio::spawn / spawn_local): child task id and the spawning task; span inheritance',
    },
    {
      id: 'spawn_blocking',
      symbol: 'tokio::runtime::blocking::pool::Spawner::spawn_task',
      site: 'entry',
      program: 'tokio_spawn',
      config: spawnConfig,
      purpose: 'a blocking task is spawned (spawn_blocking): child task id and the spawning task; span inheritance',
    },
  ],
};

// Developer aid (OTEL_RUST_AGENT_CPU_PROFILE=FILE): a V8 CPU profile of the
// agent's main thread from the moment its BPF programs are loaded until it
// stops, written as a .cpuprofile (Chrome DevTools, speedscope).
//
// It leaves out start-up (BPF loads, binary analysis); `node --cpu-prof`
// includes it (the loader blocks signals while the verifier runs, so the
// profiler's SIGPROF no longer makes the loads fail with EAGAIN).
import * as fs from 'node:fs';
import { Session } from 'node:inspector';

export class CpuProfile {
  private readonly session = new Session();

  private constructor(private readonly file: string) {}

  static start(file: string, intervalUs = 250): CpuProfile {
    const p = new CpuProfile(file);
    p.session.connect();
    p.session.post('Profiler.enable');
    p.session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    p.session.post('Profiler.start');
    return p;
  }

  /** Stops sampling and writes the profile; never throws (a developer aid must not fail the agent's stop). */
  stop(): Promise<string | undefined> {
    return new Promise((resolve) => {
      this.session.post('Profiler.stop', (err, res) => {
        try {
          if (err) return resolve(`CPU profile not written: ${err.message}`);
          fs.writeFileSync(this.file, JSON.stringify(res.profile));
          resolve(undefined);
        } catch (e) {
          resolve(`CPU profile not written to ${this.file}: ${(e as Error).message}`);
        } finally {
          this.session.disconnect();
        }
      });
    });
  }
}

// Monotonic -> wall clock conversion.
//
// bpf_ktime_get_ns() and process.hrtime.bigint() both read CLOCK_MONOTONIC.
// Wall time = monotonic + (REALTIME - MONOTONIC). We measure that offset
// without FFI: sample `h1 = hrtime; d = Date.now(); h2 = hrtime` in a tight
// loop until Date.now() ticks over a millisecond edge. Date.now() is REALTIME
// floored to the millisecond, so each sample bounds the offset:
//     d*1e6 - h2  <=  offset  <  (d+1)*1e6 - h1
// The sample just after an edge gives a tight lower bound and the one just
// before it a tight upper bound; together they pin the offset to about the
// duration of one sample (well under a microsecond).
//
// NTP slews (and may step) REALTIME, so the offset is re-measured
// periodically while running (start()/stop()).

const NS_PER_MS = 1_000_000n;

export interface ClockMeasurement {
  /** REALTIME - MONOTONIC, nanoseconds. */
  offsetNs: bigint;
  /** Half-width of the interval the offset is known to lie in, nanoseconds. */
  uncertaintyNs: bigint;
  /** Number of (hrtime, Date.now, hrtime) samples taken. */
  samples: number;
  /** How long the measurement busy-waited, nanoseconds. */
  tookNs: bigint;
}

/**
 * One measurement of REALTIME - MONOTONIC. Busy-waits until it has seen a
 * millisecond edge with tight bounds, or for at most `maxMs` (default 3 ms).
 */
export function measureClockOffset(maxMs = 3, targetUncertaintyNs = 1_000n): ClockMeasurement {
  const hr = process.hrtime.bigint;
  const t0 = hr();
  const deadline = t0 + BigInt(Math.max(1, Math.ceil(maxMs))) * NS_PER_MS;
  let lo = -(1n << 62n);
  let hi = 1n << 62n;
  let samples = 0;
  let firstD = -1;
  let edges = 0;
  for (;;) {
    const h1 = hr();
    const d = Date.now();
    const h2 = hr();
    samples++;
    const dn = BigInt(d) * NS_PER_MS;
    const l = dn - h2;
    const h = dn + NS_PER_MS - h1;
    if (l > lo) lo = l;
    if (h < hi) hi = h;
    if (hi < lo) {
      // REALTIME was stepped during the measurement: start over from this sample.
      lo = l;
      hi = h;
      edges = 0;
      firstD = d;
    }
    if (firstD < 0) firstD = d;
    else if (d !== firstD) { edges++; firstD = d; }
    if (edges > 0 && hi - lo <= 2n * targetUncertaintyNs) break;
    if (h2 > deadline) break;
  }
  return { offsetNs: (lo + hi) / 2n, uncertaintyNs: (hi - lo + 1n) / 2n, samples, tookNs: hr() - t0 };
}

export class WallClock {
  /**
   * The offset as 32-bit halves, for the hot path (SpanRecord.setStartMono):
   * one object, updated in place when the offset is re-measured.
   */
  readonly offset = { hi: 0, lo: 0 };
  private _offsetNs: bigint;
  private _uncertaintyNs: bigint;
  private _measuredAtMono: bigint;
  private timer: NodeJS.Timeout | undefined;

  /** Measures the offset once, synchronously (about 1 ms, at most `maxMs`). */
  constructor(private readonly maxMs = 3) {
    const m = measureClockOffset(maxMs);
    this._offsetNs = m.offsetNs;
    this._uncertaintyNs = m.uncertaintyNs;
    this._measuredAtMono = process.hrtime.bigint();
    this.setHalves();
  }

  private setHalves(): void {
    this.offset.hi = Number(this._offsetNs >> 32n);
    this.offset.lo = Number(this._offsetNs & 0xffffffffn);
  }

  /** REALTIME - MONOTONIC in nanoseconds, as last measured. */
  get offsetNs(): bigint { return this._offsetNs; }
  /** Half-width of the offset's error bound, nanoseconds. */
  get uncertaintyNs(): bigint { return this._uncertaintyNs; }
  /** CLOCK_MONOTONIC time of the last measurement. */
  get measuredAtMonoNs(): bigint { return this._measuredAtMono; }

  /** CLOCK_MONOTONIC ns (bpf_ktime_get_ns, hrtime.bigint) -> Unix epoch ns. */
  toUnixNano(monoNs: bigint): bigint { return monoNs + this._offsetNs; }

  /** Current wall time in Unix epoch ns, at monotonic resolution. */
  nowUnixNano(): bigint { return process.hrtime.bigint() + this._offsetNs; }

  /** Re-measures now; returns the measurement. */
  remeasure(): ClockMeasurement {
    const m = measureClockOffset(this.maxMs);
    // A measurement disturbed by preemption can come back loose; keep the
    // previous value unless the new one is comparably tight or the clock
    // clearly moved (step) beyond both error bounds.
    const moved = abs(m.offsetNs - this._offsetNs) > m.uncertaintyNs + this._uncertaintyNs;
    if (m.uncertaintyNs <= this._uncertaintyNs * 4n + 1_000n || moved) {
      this._offsetNs = m.offsetNs;
      this._uncertaintyNs = m.uncertaintyNs;
      this.setHalves();
    }
    this._measuredAtMono = process.hrtime.bigint();
    return m;
  }

  /** Re-measures every `intervalMs` (timer unref'd: never keeps the process alive). */
  start(intervalMs = 5000): void {
    this.stop();
    this.timer = setInterval(() => this.remeasure(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function abs(x: bigint): bigint { return x < 0n ? -x : x; }

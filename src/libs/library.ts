// What one instrumented library provides. Each library is one folder,
// src/libs/<name>/, holding:
//   probes.ts       its probe module: symbols, sites, layouts, versions (data)
//   probes.bpf.c    its BPF programs (built into build/bpf/<name>.bpf.o)
//   events.h        its event structs, defined once, in C
//   layouts.ts      the offsets its decoders use, checked against events.h
//   decode.ts       ring records -> typed events
//   spans.ts        events -> span records
//   README.md       why these functions, what each probe reads, its cost
// and src/libs/index.ts lists the libraries. The generic stages (binary, plan,
// bpf, events, spans, export) never import a library folder.
import type { ProbeModule } from '../plan/module';
import type { SpanRecord, ClockOffset } from '../spans/record';
import type { ServerSpanContext } from '../spans/context';

/** Offsets and constants a library's decoders use, mirroring its events.h. */
export interface EventLayouts {
  /** struct name -> field -> offset, plus sizeof under `$size`. */
  structs: Record<string, Record<string, number>>;
  /** #define name -> value. */
  constants: Record<string, number>;
  /** Event kind enumerator (without the EV_ prefix) -> value. */
  kinds: Record<string, number>;
}

/** Where span builders send what they made. */
export interface SpanOutput {
  /** CLOCK_MONOTONIC nanoseconds (BPF timestamps) -> Unix-epoch nanoseconds. */
  toUnixNano(monoNs: bigint): bigint;
  /**
   * The same conversion for the hot path: REALTIME - MONOTONIC as 32-bit
   * halves, for SpanRecord.setStartMono/setEndMono with timestamps read as
   * two u32 (no BigInt). The object is updated in place: read it at use.
   */
  readonly clock: ClockOffset;
  /** A finished span. The record is released after the call: do not keep it. */
  emit(span: SpanRecord): void;
  /** Whether a library's probes are attached in process `pid` (its binary's plan, minus probes disabled at run time). */
  libraryActive(pid: number, library: string): boolean;
}

/** A library's span assembly state for one agent run. */
export interface SpanBuilder {
  /** One ring record of a kind this library declared. The view is only valid during the call. */
  handle(kind: number, dv: DataView, off: number, len: number): void;
  /** A process exited: drop its unfinished state; returns how many spans were lost. */
  forgetProcess(pid: number): number;
  /** Drops state that waited too long (a response that never came). */
  expire(nowMono: bigint): void;
  /** Pids that have state here. */
  pids(): number[];
  /** Counters for the stats file (requests, spans, abandoned, ...). */
  stats(): Record<string, number>;
}

export interface Library {
  /** Same as module.name; also the folder name under src/libs/. */
  name: string;
  module: ProbeModule;
  /** Its events (empty for a library without probes). */
  layouts: EventLayouts;
  /**
   * Its span assembly. `ctx` is the shared service through which libraries
   * find the server span being handled right now (src/spans/context.ts):
   * owners file their spans there, enrichers look them up. Absent for a
   * library without events.
   */
  createSpans?(out: SpanOutput, ctx: ServerSpanContext, settings: SpanSettings): SpanBuilder;
}

/** What the configuration (src/cli/config.ts) says about the spans libraries build. */
export interface SpanSettings {
  /** OTEL_SEMCONV_STABILITY_OPT_IN has rpc/dup: RPC spans also carry the older experimental attributes. */
  rpcDup: boolean;
}

export const DEFAULT_SPAN_SETTINGS: SpanSettings = { rpcDup: false };

// The span model every stage after assembly works with. Spans are built by
// src/spans from decoded events, then handed to src/export. Times are absolute
// Unix-epoch nanoseconds (the clock stage has already converted them).

export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

export type SpanKindName = 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER';

export interface SpanStatus {
  code: 'UNSET' | 'OK' | 'ERROR';
  message?: string;
}

export interface AgentSpan {
  /** 32 lowercase hex chars. */
  traceId: string;
  /** 16 lowercase hex chars. */
  spanId: string;
  /** 16 lowercase hex chars, absent for a root span. */
  parentSpanId?: string;
  /** True when the parent came from another process (an incoming traceparent). */
  parentIsRemote?: boolean;
  /** W3C trace-flags byte (1 = sampled). */
  traceFlags: number;
  traceState?: string;
  name: string;
  kind: SpanKindName;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  status: SpanStatus;
  /** Process the span came from; selects the resource it is exported under. */
  pid: number;
  /** Instrumentation scope, e.g. "otel-rust-agent/hyper". */
  scope: string;
}

/** The resource of one traced process (service.name, process.pid, ...). */
export interface ProcessResource {
  pid: number;
  attributes: Attributes;
}

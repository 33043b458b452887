// What the compatibility matrix (`make test-matrix`, tools/test-matrix.ts)
// runs for a library: each library folder may hold a matrix.ts exporting
// MATRIX_FIXTURES, the fixture apps that exercise its spans and what they
// must produce. The generator finds them through LIBRARIES, so a new library
// (or a new span kind) joins the table by adding its fixture entries there.
// Types only: nothing here runs in the agent.

/** The table's columns, in order. */
export const SPAN_KINDS = ['HTTP/1 server', 'HTTP/2 server', 'route', 'gRPC server', 'HTTP client', 'gRPC client', 'parent links'] as const;
export type SpanKind = (typeof SPAN_KINDS)[number];

export type AttrValue = string | number | boolean;

/** One expected span: the request that makes it and what it must carry. */
export interface ExpectedSpan {
  /** The span kind it demonstrates (its column). */
  kind: SpanKind;
  /** Picks the span among those received (attribute subset). */
  match: Record<string, AttrValue>;
  /**
   * Every attribute the span must have, exactly ("$PORT" = the fixture's port, "$DOWN" = the downstream's).
   * Attributes that another column of the same fixture checks (http.route on
   * an HTTP/1 span, say) are left to that column.
   */
  attributes: Record<string, AttrValue | '$PORT' | '$DOWN'>;
  /** Only `attributes` (and `name`) are checked, not the span's other attributes: a column that adds to another's span (route). */
  partial?: boolean;
  /** The span's name, when the column decides it (route: `METHOD route`). */
  name?: string;
  /** Expected parent span id and trace id (a remote caller's), when the request sent one. */
  parent?: { traceId: string; spanId: string };
  /**
   * The span's parent must be the span picked by this match (same trace, parent
   * span id = that span's id): an in-process link, e.g. a CLIENT span made in a
   * handler, whose parent is that handler's SERVER span.
   */
  childOf?: Record<string, AttrValue>;
  /**
   * The request carried no traceparent: the span must be a root (no parent)
   * of a trace of its own: not the trace of any remote parent another
   * request of the exchange sent (pipelined or reused connections).
   */
  root?: boolean;
  /** The OTLP span kind it must have (2 = SERVER, 3 = CLIENT). */
  spanKind?: number;
}

/**
 * What the fixture calls out to (client fixtures): started by the matrix before
 * the fixture, untraced. `http`: a Node HTTP/1 server answering each path with
 * the status in `statuses` (others 404); `tonic-server`: the tonic-server app
 * of apps/ as built by the default release profile. "$DOWN" in a request or an
 * expected attribute is its port.
 */
export type Downstream = { kind: 'http'; statuses: Record<string, number> } | { kind: 'tonic-server' };

/** One gRPC call to the tonic-server fixture's shop.v1.Catalog (@grpc/grpc-js). */
export interface GrpcCall { method: 'GetProduct' | 'ListProducts'; id?: number; count?: number; failCode?: number; metadata?: Record<string, string> }

/**
 * How the matrix talks to the fixture: raw HTTP/1 on one connection; HTTP/2
 * with prior knowledge (h2c) on one connection, one stream after the other;
 * gRPC calls on one channel (expected gRPC status codes).
 */
export type Exchange =
  | { kind: 'http1-raw'; requests: string[]; statuses: number[]; downstream?: Downstream }
  | { kind: 'h2c'; requests: Record<string, string>[]; statuses: number[] }
  | { kind: 'grpc'; calls: GrpcCall[]; codes: number[] };

export interface MatrixFixture {
  /** Short name, for --fixtures. */
  id: string;
  /** Row label; `{version}` is replaced by the crate's version found in the build, e.g. "hyper {version} (axum 0.8)". */
  label: string;
  /** The app in apps/ (a cargo package of that workspace) that serves the requests. */
  app: string;
  /** The crate whose version the row names; checked in the built binary. */
  crate: string;
  exchange: Exchange;
  spans: ExpectedSpan[];
  /**
   * Agent modules a column needs (as `inspect --json` names them). When one of
   * them is inactive or its probes are not ready, `inspect` says why; if then no
   * span carries the column's attributes, the cell is "reported" with that
   * reason, and any span that does carry them must still be exact.
   */
  requires?: Partial<Record<SpanKind, string[]>>;
  /**
   * Compilers (the matrix's ids: "1.85"...) that cannot build the app with
   * apps/Cargo.lock, and why (a dependency's rust-version): those rows are not
   * run, and the table's "Not run" list gives the reason.
   */
  cannotBuild?: Record<string, string>;
}

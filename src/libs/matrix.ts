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
   * Every attribute the span must have, exactly ("$PORT" = the fixture's port).
   * Attributes that another column of the same fixture checks (http.route on
   * an HTTP/1 span, say) are left to that column.
   */
  attributes: Record<string, AttrValue | '$PORT'>;
  /** Only `attributes` (and `name`) are checked, not the span's other attributes: a column that adds to another's span (route). */
  partial?: boolean;
  /** The span's name, when the column decides it (route: `METHOD route`). */
  name?: string;
  /** Expected parent span id and trace id (a remote caller's), when the request sent one. */
  parent?: { traceId: string; spanId: string };
}

/** How the matrix talks to the fixture: raw HTTP/1 on one connection (more kinds as libraries need them). */
export type Exchange = { kind: 'http1-raw'; requests: string[]; statuses: number[] };

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
}

// Compatibility-matrix fixtures of the hyper HTTP/1 server (see ../matrix.ts):
// the apps/ services on hyper 1.x (through axum 0.8) and hyper 0.14.
import type { MatrixFixture, ExpectedSpan } from '../matrix';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';
const REQUESTS = [
  'GET /fail HTTP/1.1\r\nHost: localhost\r\n\r\n',
  `GET /?q=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: matrix/1\r\ntraceparent: 00-${TRACE}-${PARENT}-01\r\n\r\n`,
];

function spans(failStatus: number): ExpectedSpan[] {
  return [
    {
      kind: 'HTTP/1 server', match: { 'url.path': '/fail' }, root: true,
      attributes: {
        'http.request.method': 'GET', 'url.path': '/fail', 'url.scheme': 'http', 'server.address': 'localhost', 'server.port': 80,
        'network.protocol.version': '1.1', 'http.response.status_code': failStatus, 'error.type': String(failStatus),
      },
    },
    {
      kind: 'HTTP/1 server', match: { 'url.path': '/' },
      attributes: {
        'http.request.method': 'GET', 'url.path': '/', 'url.query': 'q=1', 'url.scheme': 'http', 'server.address': 'example.test',
        'server.port': 8080, 'user_agent.original': 'matrix/1', 'network.protocol.version': '1.1', 'http.response.status_code': 200,
      },
      parent: { traceId: TRACE, spanId: PARENT },
    },
  ];
}

// The demo service routes with axum: both requests match a route, so the
// route column checks http.route and the span name on the same two spans.
// It needs the axum probe and tokio's current task (the route event is tied
// to the request's server span by task).
const AXUM_ROUTES: ExpectedSpan[] = [
  { kind: 'route', match: { 'url.path': '/fail' }, attributes: { 'http.route': '/fail' }, name: 'GET /fail', partial: true },
  { kind: 'route', match: { 'url.path': '/' }, attributes: { 'http.route': '/' }, name: 'GET /', partial: true },
];

export const MATRIX_FIXTURES: MatrixFixture[] = [
  { id: 'hyper1-axum', label: 'hyper {version} (axum 0.8)', app: 'demo-service', crate: 'hyper', exchange: { kind: 'http1-raw', requests: REQUESTS, statuses: [500, 200] },
    spans: [...spans(500), ...AXUM_ROUTES], requires: { route: ['axum', 'tokio'] } },
  { id: 'hyper014', label: 'hyper {version}', app: 'hyper014-server', crate: 'hyper', exchange: { kind: 'http1-raw', requests: REQUESTS, statuses: [503, 200] }, spans: spans(503) },
];

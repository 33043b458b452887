// Compatibility-matrix fixture of the HTTP/2 server (see ../matrix.ts): the
// axum 0.8 app (hyper 1, h2 0.4) over h2c with prior knowledge, one stream
// after the other on one connection; the second carries a remote parent.
import type { MatrixFixture } from '../matrix';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

export const MATRIX_FIXTURES: MatrixFixture[] = [
  {
    id: 'h2-axum', label: 'h2 {version} (axum 0.8, h2c)', app: 'axum08-server', crate: 'h2',
    exchange: {
      kind: 'h2c', statuses: [503, 200],
      requests: [
        { ':path': '/status/503?m=1', 'user-agent': 'matrix/2' },
        { ':path': '/api/v1/users/u-17?verbose=1', 'user-agent': 'matrix/2', traceparent: `00-${TRACE}-${PARENT}-01` },
      ],
    },
    spans: [
      {
        kind: 'HTTP/2 server', match: { 'url.path': '/status/503' }, spanKind: 2, root: true,
        attributes: {
          'http.request.method': 'GET', 'url.path': '/status/503', 'url.query': 'm=1', 'url.scheme': 'http', 'server.address': '127.0.0.1',
          'server.port': '$PORT', 'user_agent.original': 'matrix/2', 'network.protocol.version': '2', 'http.response.status_code': 503, 'error.type': '503',
        },
      },
      {
        kind: 'HTTP/2 server', match: { 'url.path': '/api/v1/users/u-17' }, spanKind: 2,
        attributes: {
          'http.request.method': 'GET', 'url.path': '/api/v1/users/u-17', 'url.query': 'verbose=1', 'url.scheme': 'http', 'server.address': '127.0.0.1',
          'server.port': '$PORT', 'user_agent.original': 'matrix/2', 'network.protocol.version': '2', 'http.response.status_code': 200,
        },
        parent: { traceId: TRACE, spanId: PARENT },
      },
      { kind: 'route', match: { 'url.path': '/status/503' }, attributes: { 'http.route': '/status/{code}' }, name: 'GET /status/{code}', partial: true },
      { kind: 'route', match: { 'url.path': '/api/v1/users/u-17' }, attributes: { 'http.route': '/api/v1/users/{uid}' }, name: 'GET /api/v1/users/{uid}', partial: true },
    ],
    requires: { 'HTTP/2 server': ['h2-server'], route: ['axum', 'tokio'] },
  },
];

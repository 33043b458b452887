// Compatibility-matrix fixture of the HTTP client (see ../matrix.ts): the
// reqwest 0.12 app (axum 0.8 handler calling out with reqwest, hyper 1 client,
// HTTP/1) against a local downstream. Each request to the fixture makes one
// call from the handler's task: the CLIENT span must be exact, and its parent
// the handler's SERVER span (the second request also carries a remote parent,
// so the client span lands in the caller's trace).
import type { MatrixFixture, ExpectedSpan } from '../matrix';

const TRACE = '0af7651916cd43dd8448eb211c80319d';
const PARENT = 'b7ad6b7169203332';
const q = (p: string) => `url=${encodeURIComponent('http://127.0.0.1:')}$DOWN${encodeURIComponent(p)}`;
const SERVER = (query: string): Record<string, string | number> => ({
  'http.request.method': 'GET', 'url.path': '/call', 'url.query': query, 'url.scheme': 'http', 'server.address': 'localhost', 'server.port': 80,
  'network.protocol.version': '1.1', 'http.response.status_code': 200,
});

export const MATRIX_FIXTURES: MatrixFixture[] = [
  {
    id: 'reqwest12', label: 'reqwest {version} client (axum 0.8, HTTP/1)', app: 'reqwest12-client', crate: 'reqwest',
    cannotBuild: { '1.85': 'the icu_* 2.4.0 crates (url 2, through reqwest) require rustc 1.88, idna_adapter 1.2.2 rustc 1.86 (cargo refuses the build; older pins need a lockfile of their own)' },
    exchange: {
      kind: 'http1-raw', statuses: [200, 200], downstream: { kind: 'http', statuses: { '/ok': 200, '/missing': 404 } },
      requests: [
        `GET /call?${q('/ok?a=1')} HTTP/1.1\r\nHost: localhost\r\n\r\n`,
        `GET /call?${q('/missing')} HTTP/1.1\r\nHost: localhost\r\ntraceparent: 00-${TRACE}-${PARENT}-01\r\n\r\n`,
      ],
    },
    spans: [
      { kind: 'HTTP/1 server', match: { 'url.query': q('/ok?a=1') }, spanKind: 2, root: true, attributes: SERVER(q('/ok?a=1')) },
      { kind: 'HTTP/1 server', match: { 'url.query': q('/missing') }, spanKind: 2, attributes: SERVER(q('/missing')), parent: { traceId: TRACE, spanId: PARENT } },
      { kind: 'route', match: { 'url.query': q('/ok?a=1') }, attributes: { 'http.route': '/call' }, name: 'GET /call', partial: true },
      { kind: 'route', match: { 'url.query': q('/missing') }, attributes: { 'http.route': '/call' }, name: 'GET /call', partial: true },
      {
        kind: 'HTTP client', match: { 'url.full': 'http://127.0.0.1:$DOWN/ok?a=1' }, spanKind: 3, name: 'GET',
        attributes: { 'http.request.method': 'GET', 'url.full': 'http://127.0.0.1:$DOWN/ok?a=1', 'server.address': '127.0.0.1', 'server.port': '$DOWN', 'network.protocol.version': '1.1', 'http.response.status_code': 200 },
      },
      {
        kind: 'HTTP client', match: { 'url.full': 'http://127.0.0.1:$DOWN/missing' }, spanKind: 3, name: 'GET',
        attributes: { 'http.request.method': 'GET', 'url.full': 'http://127.0.0.1:$DOWN/missing', 'server.address': '127.0.0.1', 'server.port': '$DOWN', 'network.protocol.version': '1.1', 'http.response.status_code': 404, 'error.type': '404' },
      },
      { kind: 'parent links', match: { 'url.full': 'http://127.0.0.1:$DOWN/ok?a=1' }, attributes: {}, partial: true, childOf: { 'url.query': q('/ok?a=1') } },
      { kind: 'parent links', match: { 'url.full': 'http://127.0.0.1:$DOWN/missing' }, attributes: {}, partial: true, childOf: { 'url.query': q('/missing') } },
    ] satisfies ExpectedSpan[],
    requires: { 'HTTP/1 server': ['hyper-h1-server'], route: ['axum', 'tokio'], 'HTTP client': ['hyper-h1-client'], 'parent links': ['hyper-h1-server', 'hyper-h1-client', 'tokio'] },
  },
];

// Compatibility-matrix fixture of the gRPC client (see ../matrix.ts): the
// tonic 0.14 client app (an axum 0.8 handler calling shop.v1.Catalog through
// tonic's Channel, hyper 1 over h2 0.4) against an untraced tonic-server. Each
// request to the fixture makes one unary call from the handler's task: the
// CLIENT span must be exact and its parent the handler's SERVER span.
import type { MatrixFixture, ExpectedSpan } from '../matrix';

const TRACE = '0af7651916cd43dd8448eb211c80319e';
const PARENT = 'b7ad6b7169203333';
const q = (id: number) => `target=${encodeURIComponent('http://127.0.0.1:')}$DOWN&method=get&id=${id}`;
const SERVER = (query: string): Record<string, string | number> => ({
  'http.request.method': 'GET', 'url.path': '/grpc', 'url.query': query, 'url.scheme': 'http', 'server.address': 'localhost', 'server.port': 80,
  'network.protocol.version': '1.1', 'http.response.status_code': 200,
});
const RPC = { 'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'server.address': '127.0.0.1', 'server.port': '$DOWN' } as const;

export const MATRIX_FIXTURES: MatrixFixture[] = [
  {
    id: 'tonic-client', label: 'tonic {version} client (axum 0.8)', app: 'tonic-client', crate: 'tonic',
    cannotBuild: { '1.85': 'tonic 0.14.9 and tonic-prost 0.14.9 require rustc 1.88, the icu_* 2.4.0 crates (url, through reqwest) rustc 1.88 (cargo refuses the build)' },
    exchange: {
      kind: 'http1-raw', statuses: [200, 200], downstream: { kind: 'tonic-server' },
      requests: [
        `GET /grpc?${q(7)} HTTP/1.1\r\nHost: localhost\r\n\r\n`,
        `GET /grpc?${q(-13)} HTTP/1.1\r\nHost: localhost\r\ntraceparent: 00-${TRACE}-${PARENT}-01\r\n\r\n`,
      ],
    },
    spans: [
      { kind: 'HTTP/1 server', match: { 'url.query': q(7) }, spanKind: 2, root: true, attributes: SERVER(q(7)) },
      { kind: 'HTTP/1 server', match: { 'url.query': q(-13) }, spanKind: 2, attributes: SERVER(q(-13)), parent: { traceId: TRACE, spanId: PARENT } },
      { kind: 'route', match: { 'url.query': q(7) }, attributes: { 'http.route': '/grpc' }, name: 'GET /grpc', partial: true },
      { kind: 'route', match: { 'url.query': q(-13) }, attributes: { 'http.route': '/grpc' }, name: 'GET /grpc', partial: true },
      { kind: 'gRPC client', match: { 'rpc.status_code': 'OK' }, spanKind: 3, name: 'shop.v1.Catalog/GetProduct', attributes: { ...RPC, 'rpc.status_code': 'OK' } },
      { kind: 'gRPC client', match: { 'rpc.status_code': 'INTERNAL' }, spanKind: 3, name: 'shop.v1.Catalog/GetProduct', attributes: { ...RPC, 'rpc.status_code': 'INTERNAL', 'error.type': 'INTERNAL' } },
      { kind: 'parent links', match: { 'rpc.status_code': 'OK' }, attributes: {}, partial: true, childOf: { 'url.query': q(7) } },
      { kind: 'parent links', match: { 'rpc.status_code': 'INTERNAL' }, attributes: {}, partial: true, childOf: { 'url.query': q(-13) } },
    ] satisfies ExpectedSpan[],
    requires: { 'HTTP/1 server': ['hyper-h1-server'], route: ['axum', 'tokio'], 'gRPC client': ['h2-client', 'tonic-client'], 'parent links': ['hyper-h1-server', 'tonic-client', 'tokio'] },
  },
];

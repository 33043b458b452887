// Compatibility-matrix fixture of the gRPC server (see ../matrix.ts): the
// tonic 0.14 app (hyper 1, h2 0.4) called through @grpc/grpc-js on one
// channel: a unary OK with a remote parent, and a unary INTERNAL (trailers-only).
import type { MatrixFixture } from '../matrix';

const TRACE = '0000000000000000000000000abc0001';
const PARENT = '00f067aa0ba902b7';
const ATTRS = { 'rpc.system.name': 'grpc', 'rpc.method': 'shop.v1.Catalog/GetProduct', 'server.address': '127.0.0.1', 'server.port': '$PORT' } as const;

export const MATRIX_FIXTURES: MatrixFixture[] = [
  {
    id: 'tonic-server', label: 'tonic {version} server', app: 'tonic-server', crate: 'tonic',
    cannotBuild: { '1.85': 'tonic 0.14.9 and tonic-prost 0.14.9 require rustc 1.88 (cargo refuses the build)' },
    exchange: {
      kind: 'grpc', codes: [0, 13],
      calls: [
        { method: 'GetProduct', id: 7, metadata: { traceparent: `00-${TRACE}-${PARENT}-01` } },
        { method: 'GetProduct', id: -13 },
      ],
    },
    spans: [
      { kind: 'gRPC server', match: { 'rpc.status_code': 'OK' }, spanKind: 2, name: 'shop.v1.Catalog/GetProduct', attributes: { ...ATTRS, 'rpc.status_code': 'OK' }, parent: { traceId: TRACE, spanId: PARENT } },
      { kind: 'gRPC server', match: { 'rpc.status_code': 'INTERNAL' }, spanKind: 2, root: true, name: 'shop.v1.Catalog/GetProduct', attributes: { ...ATTRS, 'rpc.status_code': 'INTERNAL', 'error.type': 'INTERNAL' } },
    ],
    // The gRPC span is the h2 server's span, named and completed by tonic's probe.
    requires: { 'gRPC server': ['h2-server', 'tonic-server'] },
  },
];

// tonic (0.10 to 0.14) gRPC servers: gRPC spans on h2-server's streams.
//
// A gRPC call is an HTTP/2 stream; h2-server sees its request and response
// head. What only the end of the call says is its status: tonic sends it in
// the trailers (every call that streamed a message, unary included), or in
// the response head when it fails before any message (trailers-only, read
// by h2-server's send_response probe). So the one probe here is on the
// function that hands the trailers to h2, reading grpc-status and
// grpc-message from the map tonic built: what tonic actually sent, with no
// tonic struct layout (tonic's Status changed shape in 0.14).
//
// Why this function: StreamRef<B>::send_trailers is the only function that
// receives a stream's trailers together with its connection (h2's
// non-generic frame::Headers::trailers sees a stream id alone). Like
// send_response it is generic over the body buffer and instantiated in the
// application crate (kept out of line on the axum 0.8, tonic 0.14 and
// hyper 0.14 fixtures).
//
// Hits per gRPC call: 1 here (trailers), on a push; plus h2-server's 2.
import type { ProbeModule } from '../../plan/module';
import { trailersConfig } from './offsets';

export const tonicServer: ProbeModule = {
  name: 'tonic-server',
  scope: 'otel-rust-agent/tonic',
  bpfObject: 'tonic-server.bpf.o',
  // The probe is on h2's code, present in any HTTP/2 server: only with tonic linked.
  crate: { crate: 'tonic', min: '0.10.0', below: '0.15.0', mustBeFound: true },
  probes: [
    {
      id: 'send_trailers',
      symbol: 'h2::proto::streams::streams::StreamRef<B>::send_trailers',
      site: 'entry',
      program: 'grpc_send_trailers',
      config: trailersConfig,
      required: true,
      purpose: 'grpc-status and grpc-message in the trailers tonic sends; gRPC span end',
    },
  ],
};

// h2 server: one SERVER span per HTTP/2 stream, for h2 0.3 (hyper 0.14) and
// 0.4 (hyper 1.x, axum, tonic).
//
// Why these functions (README.md here; the notes' rust-probe-points.md §1.3):
//   Recv::recv_headers is non-generic and receives every HEADERS frame that
//   opens a stream, after HPACK decoding: the request's pseudo-headers and
//   header map, so no dynamic-table state is needed (a connection opened
//   before the agent attached gives complete spans). hyper's h2 server and
//   everything above it are generic; h2's own decoder is per frame.
//   StreamRef<B>::send_response is the one function that receives a
//   response head together with its stream's connection: non-generic
//   alternatives (server::Peer::convert_send_message) see a stream id but no
//   connection. It is generic over the body buffer, instantiated in the
//   application crate, and kept out of line in release builds (checked on
//   axum 0.8, tonic 0.14 and hyper 0.14 fixtures); all instances are probed.
//   Recv::recv_reset sees RST_STREAM frames: rare, so free in normal traffic.
//
// Hits per request: 2 (recv_headers, send_response), both on the functions'
// first instruction, a push (emulated by the kernel).
import type { ProbeModule } from '../../plan/module';
import { requestConfig, responseConfig, resetConfig } from './offsets';

export const h2Server: ProbeModule = {
  name: 'h2-server',
  scope: 'otel-rust-agent/h2',
  bpfObject: 'h2-server.bpf.o',
  crate: { crate: 'h2', min: '0.3.0', below: '0.5.0' },
  probes: [
    {
      id: 'recv_headers',
      symbol: 'h2::proto::streams::recv::Recv::recv_headers',
      site: 'entry',
      program: 'h2_recv_headers',
      config: requestConfig,
      required: true,
      purpose: 'decoded request headers (method, :path, :authority, user-agent, traceparent); span start',
    },
    {
      id: 'send_response',
      symbol: 'h2::proto::streams::streams::StreamRef<B>::send_response',
      site: 'entry',
      program: 'h2_send_response',
      config: responseConfig,
      required: true,
      purpose: 'response status (and grpc-status of a trailers-only response); span end',
    },
    {
      id: 'recv_reset',
      symbol: 'h2::proto::streams::recv::Recv::recv_reset',
      site: 'entry',
      program: 'h2_recv_reset',
      config: resetConfig,
      purpose: 'RST_STREAM from the client: ends an unanswered stream with error.type',
    },
  ],
};

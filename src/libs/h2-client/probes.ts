// h2 client: one CLIENT span per HTTP/2 stream a process opens, for h2 0.4
// (hyper 1.x's HTTP/2 client: tonic's Channel, reqwest with http2,
// hyper-util's legacy client, hyper::client::conn::http2) and h2 0.3
// (hyper 0.14's: reqwest 0.11), whose send_headers/recv_* have the same
// signatures and whose frame types have the same layouts (offsets database).
// Only one h2 may be linked: two versions' functions share their names.
//
// Why these functions (README.md here; the notes' rust-probe-points.md §1.3):
//   Send::send_headers<B> receives every HEADERS frame h2 queues for a
//   stream, as frame::Headers (pseudo-headers and header map, before HPACK),
//   with the stream's Ptr and the connection's Counts: the same data and
//   offsets as h2-server's recv_headers, for the sending side. The
//   non-generic client::Peer::convert_send_message sees the request but
//   not the connection (stream ids repeat on every connection), and
//   Streams::send_request sees the connection but not yet the stream id.
//   send_headers is generic over the send buffer; release builds keep it
//   out of line (two instances in the reqwest 0.12 fixture, checked with
//   nm); every instance is probed. A server's response heads pass here too
//   and are skipped at once, so the module is planned only where h2's client
//   is linked (h2::client::Peer::convert_send_message present).
//   Recv::recv_headers (non-generic) receives the response head decoded;
//   h2-server probes the same function for requests (one breakpoint, two
//   programs, each skips the other side's frames at once).
//   Recv::recv_trailers (non-generic) receives the trailers: gRPC's status.
//   Recv::recv_reset (non-generic, h2-server's too) sees RST_STREAM: rare.
//
// Hits per stream: 2 (send_headers, recv_headers), +1 recv_trailers for a
// response with trailers (every gRPC call that sent a message). All on the
// functions' first instruction, a push (emulated).
import type { ProbeModule, ConfigContext, ConfigResult } from '../../plan/module';
import { requestConfig, resetConfig } from '../h2-server/offsets';

const CLIENT_MARK = 'h2::client::Peer::convert_send_message';

/**
 * h2-server's request config (frame::Headers, Ptr, Inner, HeaderMap offsets), only where h2's client is linked,
 * and only where every h2 linked is one this module knows: with h2 0.3 beside 0.4 (reqwest 0.11 in a
 * binary whose server is hyper 1.x), both versions' send_headers have the same name, and the 0.3 one
 * would be read with 0.4's and http 1.x's offsets.
 */
function clientConfig(ctx: ConfigContext): ConfigResult {
  if (ctx.binary.functionsByName(CLIENT_MARK).length === 0) return { ok: false, reason: `h2's client is not linked (no ${CLIENT_MARK})` };
  const others = (ctx.binary.crates.get('h2') ?? []).filter((v) => !ctx.crateVersions.includes(v));
  if (others.length > 0)
    return { ok: false, reason: `h2 ${others.join(', ')} is linked too, whose client is not supported: which send_headers instance belongs to which h2 cannot be told` };
  return requestConfig(ctx);
}

/** recv_reset: h2-server's check of frame::Reset's field order (the frame arrives as two u32 registers), then the client config. */
function resetClientConfig(ctx: ConfigContext): ConfigResult {
  const r = resetConfig(ctx);
  return r.ok ? clientConfig(ctx) : r;
}

export const h2Client: ProbeModule = {
  name: 'h2-client',
  scope: 'otel-rust-agent/h2-client',
  bpfObject: 'h2-client.bpf.o',
  crate: { crate: 'h2', min: '0.3.0', below: '0.5.0' },
  probes: [
    {
      id: 'client_send_headers',
      symbol: 'h2::proto::streams::send::Send::send_headers',
      site: 'entry',
      program: 'h2c_send_headers',
      config: clientConfig,
      required: true,
      purpose: 'request HEADERS queued on a stream (method, :path, :authority, :scheme, content-type); span start',
    },
    {
      id: 'client_recv_headers',
      symbol: 'h2::proto::streams::recv::Recv::recv_headers',
      site: 'entry',
      program: 'h2c_recv_headers',
      config: clientConfig,
      required: true,
      purpose: 'response HEADERS (:status; grpc-status of a trailers-only response); HTTP span end',
    },
    {
      id: 'client_recv_trailers',
      symbol: 'h2::proto::streams::recv::Recv::recv_trailers',
      site: 'entry',
      program: 'h2c_recv_trailers',
      config: clientConfig,
      purpose: 'response trailers (grpc-status, grpc-message); gRPC span end',
    },
    {
      id: 'client_recv_reset',
      symbol: 'h2::proto::streams::recv::Recv::recv_reset',
      site: 'entry',
      program: 'h2c_recv_reset',
      config: resetClientConfig,
      purpose: 'RST_STREAM from the server: ends the stream ERROR (gRPC: the code gRPC maps the reset to)',
    },
  ],
};

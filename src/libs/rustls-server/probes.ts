// rustls (server side): which tasks serve TLS connections, for url.scheme.
//
// Why this function (README.md here): the server handshake processes the
// ClientHello in <ExpectClientHello as State<ServerConnectionData>>::handle,
// a method called through `dyn State` (so it is never inlined away), once
// per connection (twice after a HelloRetryRequest). Per-read functions
// (rustls::conn::Reader::read) would cost a hit per request.
import type { ProbeModule } from '../../plan/module';

export const rustlsServer: ProbeModule = {
  name: 'rustls-server',
  scope: 'otel-rust-agent/rustls',
  bpfObject: 'rustls-server.bpf.o',
  crate: { crate: 'rustls', min: '0.21.0', below: '0.24.0' },
  probes: [
    {
      id: 'client_hello',
      symbol: '<rustls::server::hs::ExpectClientHello as rustls::common_state::State<rustls::server::server_conn::ServerConnectionData>>::handle',
      site: 'entry',
      program: 'rustls_client_hello',
      required: true,
      purpose: 'a TLS server handshake: the task doing it serves https',
    },
  ],
};

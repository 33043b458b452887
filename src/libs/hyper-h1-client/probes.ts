// hyper HTTP/1 client: one CLIENT span per HTTP/1 request on the wire, for
// hyper 0.14 and 1.x clients and everything built on them (reqwest 0.11-0.13,
// hyper-util's legacy client, hyper::client::conn, hyper 0.14's Client).
//
// Why these functions (README.md here; the notes' rust-probe-points.md §1.1):
//   <Client as Http1Transaction>::encode and ::parse are the client twins of
//   the server's probes: non-generic, same signatures from hyper 0.13 to 1.x,
//   called from generic code instantiated in the application crate, so kept
//   out of line in release builds. Every HTTP/1 request a hyper client sends
//   goes through encode once (so a request made by reqwest on hyper is seen
//   once, never twice), and its response head through parse.
//
// Hits per request: 2 (encode entry, parse entry), both on a push (emulated);
// +1 parse when a response head arrives split across reads; reqwest adds
// execute_request (+1 per call) and, for a failed call only,
// reqwest::error::request (+1).
import type { ProbeModule } from '../../plan/module';

const CLIENT = '<hyper::proto::h1::role::Client as hyper::proto::h1::Http1Transaction>';

export const hyperH1Client: ProbeModule = {
  name: 'hyper-h1-client',
  scope: 'otel-rust-agent/hyper-client',
  bpfObject: 'hyper-h1-client.bpf.o',
  crate: { crate: 'hyper', min: '0.14.0', below: '2.0.0' },
  probes: [
    {
      id: 'client_encode',
      symbol: `${CLIENT}::encode`,
      site: 'entry',
      program: 'h1_client_encode',
      layout: 'Vec<u8>',
      required: true,
      purpose: 'a request head is being written (time, thread, task, the connection\'s head buffer); span start',
    },
    {
      id: 'client_parse',
      symbol: `${CLIENT}::parse`,
      site: 'entry',
      program: 'h1_client_parse',
      layout: 'BytesMut',
      required: true,
      purpose: 'response head bytes, and the request head still in the write buffer; span end',
    },
    {
      // reqwest 0.11-0.13: the call as the application made it, in its own
      // task. Optional: without reqwest the wire spans stand alone.
      id: 'reqwest_execute',
      symbol: 'reqwest::async_impl::client::Client::execute_request',
      site: 'entry',
      program: 'reqwest_execute_request',
      layout: 'Vec<u8>',
      purpose: 'reqwest call handed over (time, the caller\'s task and thread, the URL); span start and parent',
    },
    {
      // reqwest::blocking: the call on the calling thread (its task, when
      // that is a spawn_blocking task); the async call that follows on
      // reqwest's runtime thread runs outside any task.
      id: 'reqwest_blocking_execute',
      symbol: 'reqwest::blocking::client::Client::execute',
      site: 'entry',
      program: 'reqwest_blocking_execute',
      layout: 'Vec<u8>',
      requires: 'reqwest_execute',
      purpose: 'reqwest::blocking call made (the calling thread\'s task, the URL): parent of the call its runtime thread then makes',
    },
    {
      // hyper's own clients used directly: hyper-util's legacy Client
      // (and reqwest 0.12/0.13 on it) calls origin_form on each request for
      // a plain HTTP/1 connection, in the caller's task. Files the request
      // target with the caller's server span for the socket program
      // (src/propagation); reqwest's calls, filed at execute_request, are
      // skipped there. Optional: without it, such requests go out unchanged.
      id: 'hyper_util_origin_form',
      symbol: 'hyper_util::client::legacy::client::origin_form',
      site: 'entry',
      program: 'hyper_origin_form',
      purpose: 'hyper-util legacy Client request (caller\'s task, the Uri\'s path and query): filed for traceparent insertion',
    },
    {
      // hyper 0.14's Client (and reqwest 0.11 on it): the same function.
      id: 'hyper014_origin_form',
      symbol: 'hyper::client::client::origin_form',
      site: 'entry',
      program: 'hyper_origin_form',
      purpose: 'hyper 0.14 Client request (caller\'s task, the Uri\'s path and query): filed for traceparent insertion',
    },
    {
      // reqwest 0.12/0.13: a hyper-util client error becomes a reqwest
      // error, in the caller's task. Hit by failed calls only; a connect
      // failure (refused, DNS) is recognised by content and ends its call.
      id: 'reqwest_request_error',
      symbol: 'reqwest::error::request',
      site: 'entry',
      program: 'reqwest_request_error',
      requires: 'reqwest_execute',
      purpose: 'a reqwest call failed in hyper-util (the caller\'s task; connect errors: refused / other OS error / DNS): span end of a call that never reached the wire',
    },
  ],
};

// hyper HTTP/1 server: one SERVER span per request, for hyper 0.14 and 1.x
// (and everything built on them: axum, tonic's HTTP/1 paths, warp, ...).
//
// Why these functions (see README.md here, and the notes' rust-probe-points.md §1.1):
//   <Server as Http1Transaction>::parse and ::encode are non-generic, with the
//   same signatures from hyper 0.13 to 1.x, and called from generic code that
//   is instantiated in the application crate, so release builds keep them as
//   out-of-line symbols. parse receives the raw request-head bytes; encode
//   appends the raw response head to a Vec<u8>. Both are raw byte buffers: only
//   the field order of BytesMut and Vec<u8> is needed, never a hyper struct.
//
// Under fat LTO with one codegen unit, encode is inlined into the generic
// Conn::write_head (hyper 1.x), or with write_head into Conn::encode_head
// (hyper 0.14, checked with rustc 1.85, 1.95 and 1.96). Those keep an
// out-of-line copy (large, called from the dispatcher's poll loop) and
// receive the MessageHead by pointer, so their entry gives the same span
// end: write_head_status / encode_head_status, used only when encode is
// missing, and only on instances whose code tests head.subject == 101
// (encode's first test, now inlined there).
//
// Without any symbols, each function is identified by the panic locations of
// hyper's role.rs its code references (offsets/signatures.json) and checked
// by what its code does with its arguments (src/plan/identify.ts).
//
// Hits per request: parse entry (1; 2 for the first request on an axum
// connection, whose first read is the 24-byte HTTP/2 preface sniff) and
// encode entry (1), which reads the status through msg.head when the offsets
// of Encode.head and MessageHead.subject are known for this binary. Otherwise
// encode entry + its return sites (2 hits, the ret one single-stepped).
import type { IdentifySpec, ProbeModule } from '../../plan/module';

const SERVER = '<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>';
const ENCODE = `${SERVER}::encode`;
const HEAD_DWARF = 'hyper::proto::MessageHead<http::status::StatusCode>';
/** Without symbols, encode is the function with encode's panic locations
 * whose code tests msg.head.subject == 101 through its Encode argument. */
const ENCODE_IDENTIFY: IdentifySpec = { check: { kind: 'u16-chain', register: 'RSI', compareWith: 101 } };

export const hyperH1Server: ProbeModule = {
  name: 'hyper-h1-server',
  scope: 'otel-rust-agent/hyper',
  bpfObject: 'hyper-h1-server.bpf.o',
  crate: { crate: 'hyper', min: '0.14.0', below: '2.0.0' },
  probes: [
    {
      id: 'parse',
      symbol: `${SERVER}::parse`,
      site: 'entry',
      program: 'h1_server_parse',
      layout: 'BytesMut',
      required: true,
      identify: { check: { kind: 'arg-words', register: 'RSI', layout: 'BytesMut', fields: ['ptr', 'len'] } },
      purpose: 'request head bytes: method, target, Host, User-Agent, traceparent; span start',
    },
    {
      id: 'encode_status',
      symbol: `${SERVER}::encode`,
      site: 'entry',
      program: 'h1_server_encode_status',
      fieldChain: {
        outer: { type: 'hyper::proto::h1::Encode<StatusCode>', field: 'head', dwarf: 'hyper::proto::h1::Encode<http::status::StatusCode>' },
        inner: { type: 'hyper::proto::MessageHead<StatusCode>', field: 'subject', dwarf: HEAD_DWARF },
        // encode starts with `if msg.head.subject == StatusCode::SWITCHING_PROTOCOLS`.
        code: { argRegister: 'RSI', compareWith: 101 },
      },
      replaces: ['encode', 'encode_ret'],
      identify: ENCODE_IDENTIFY,
      purpose: 'status from msg.head.subject at entry; span end (one emulated hit)',
    },
    {
      id: 'encode',
      symbol: `${SERVER}::encode`,
      site: 'entry',
      program: 'h1_server_encode_entry',
      layout: 'Vec<u8>',
      required: true,
      identify: ENCODE_IDENTIFY,
      purpose: 'remembers the response buffer and its length',
    },
    {
      id: 'encode_ret',
      symbol: `${SERVER}::encode`,
      site: 'return-sites',
      program: 'h1_server_encode_ret',
      layout: 'Vec<u8>',
      requires: 'encode',
      required: true,
      identify: ENCODE_IDENTIFY,
      purpose: 'status line just encoded; span end',
    },
    {
      id: 'write_head_status',
      symbol: 'hyper::proto::h1::conn::Conn<I,B,T>::write_head',
      site: 'entry',
      program: 'h1_server_write_head',
      onlyIfMissing: ['encode_status', 'encode'],
      replaces: ['encode_status', 'encode', 'encode_ret'],
      argField: {
        type: 'hyper::proto::MessageHead<StatusCode>',
        field: 'subject',
        dwarf: HEAD_DWARF,
        code: { argRegister: 'RSI', compareWith: 101 },
      },
      identify: { anchorsOf: ENCODE, check: { kind: 'arg-u16', register: 'RSI', compareWith: 101 }, filterNamed: true },
      purpose: 'fat-LTO fallback: status from head.subject where encode was inlined; span end (one emulated hit)',
    },
    {
      id: 'encode_head_status',
      symbol: 'hyper::proto::h1::conn::Conn<I,B,T>::encode_head',
      site: 'entry',
      program: 'h1_server_encode_head',
      onlyIfMissing: ['encode_status', 'encode', 'write_head_status'],
      replaces: ['encode_status', 'encode', 'encode_ret'],
      argField: {
        type: 'hyper::proto::MessageHead<StatusCode>',
        field: 'subject',
        dwarf: HEAD_DWARF,
        code: { argRegister: 'RDX', compareWith: 101 },
      },
      identify: { anchorsOf: ENCODE, check: { kind: 'arg-u16', register: 'RDX', compareWith: 101 }, filterNamed: true },
      purpose: 'fat-LTO fallback (hyper 0.14, where write_head is inlined too): the same, one call further out',
    },
  ],
};

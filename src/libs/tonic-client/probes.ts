// tonic (0.12-0.14; tested 0.12.3, 0.13.1 and 0.14.9) gRPC clients: the call as the application makes it, in its
// own task, so that the CLIENT span h2-client makes for the call's stream
// gets the server span of that task as parent (context rule 6,
// src/spans/context.ts). The span itself is h2-client's: a tonic call is
// one HTTP/2 stream, seen on the wire once, so there is one span per call.
//
// Why this function: GrpcConfig::prepare_request is non-generic and called
// once per call, for every call kind (Grpc::unary, client/server/bidi
// streaming all go through Grpc::streaming), in the caller's task, right
// before the request is queued for the transport; it receives the call's
// path. tonic's generic client code around it is instantiated in the
// application and inlined; Channel::call (non-generic too) receives the
// request as an http::Request<Body>, whose layout is not in the offsets
// database.
//
// Hits per call: 1, on a push (emulated); +1 (Status::from_error, first
// instruction push %r15) for a call that fails in the transport.
import type { ProbeModule, ConfigContext, ConfigResult } from '../../plan/module';
import { Missing, StackLayouts, stackVersions } from '../h2-server/offsets';
import { TONIC_CLIENT_LAYOUTS } from './layouts';

const C = TONIC_CLIENT_LAYOUTS.constants;

/**
 * The call's path: a PathAndQuery { data: ByteStr(Bytes), query: u16 }
 * passed by reference. Bytes' words come from the offsets database (the
 * bytes version tonic's h2 stack uses); the Bytes is the struct's first
 * field (the larger alignment goes first; the program checks every hit: the
 * bytes must start with '/', else it is a counted bad layout).
 */
function pathConfig(ctx: ConfigContext): ConfigResult {
  const v = stackVersions(ctx.binary, ctx.binary.crates.get('h2') ?? []);
  if (typeof v === 'string') return { ok: false, reason: v };
  const l = new StackLayouts(ctx.binary, v);
  try {
    const vals = new Array<number>(C.TC_CFG_SLOTS).fill(0);
    vals[C.TC_CFG_PATH_DATA] = 0;
    vals[C.TC_CFG_BYTES_PTR] = l.field('bytes::bytes::Bytes', 'bytes', 'ptr');
    vals[C.TC_CFG_BYTES_LEN] = l.field('bytes::bytes::Bytes', 'bytes', 'len');
    return { ok: true, values: vals, detail: `${l.detail('path Bytes')}; PathAndQuery.data first, checked on every hit` };
  } catch (e) {
    if (e instanceof Missing) return { ok: false, reason: e.message };
    throw e;
  }
}

/**
 * Status::from_error: its own vaddr (the program computes the runtime bias
 * from it) and the vaddrs of the drop glue of tonic's transport::Error and
 * ConnectError (a Box<dyn Error>'s vtable starts with the type's drop glue):
 * every copy rustc emitted (one per codegen unit that needed it).
 */
function fromErrorConfig(ctx: ConfigContext): ConfigResult {
  const vals = new Array<number>(C.TC_ERR_SLOTS).fill(0);
  const put = (name: string, nSlot: number, first: number): string | undefined => {
    const fns = ctx.binary.functionsByName(`core::ptr::drop_in_place<${name}>`);
    if (fns.length === 0) return `core::ptr::drop_in_place<${name}> not found (stripped, or the type is not dropped through a vtable here)`;
    if (fns.length > C.TC_ERR_MAX) return `core::ptr::drop_in_place<${name}> has ${fns.length} copies (at most ${C.TC_ERR_MAX} are checked)`;
    vals[nSlot] = fns.length;
    fns.forEach((f, i) => { vals[first + i] = f.vaddr; });
    return undefined;
  };
  const why = put('tonic::transport::error::Error', C.TC_ERR_N_TRANSPORT, C.TC_ERR_TRANSPORT) ?? put('tonic::status::ConnectError', C.TC_ERR_N_CONNECT, C.TC_ERR_CONNECT);
  if (why) return { ok: false, reason: why };
  vals[C.TC_ERR_FN] = ctx.fn.vaddr;
  if (vals.some((v) => v > 0x7fffffff)) return { ok: false, reason: 'an address does not fit the 32-bit config slots' };
  return { ok: true, values: vals, detail: `drop glue: ${vals[C.TC_ERR_N_TRANSPORT]} transport::Error, ${vals[C.TC_ERR_N_CONNECT]} ConnectError` };
}

export const tonicClient: ProbeModule = {
  name: 'tonic-client',
  scope: 'otel-rust-agent/tonic',
  bpfObject: 'tonic-client.bpf.o',
  // Tested: 0.12.3, 0.13.1 and 0.14.9.
  crate: { crate: 'tonic', min: '0.12.0', below: '0.15.0', mustBeFound: true },
  probes: [
    {
      id: 'prepare_request',
      symbol: 'tonic::client::grpc::GrpcConfig::prepare_request',
      site: 'entry',
      program: 'tonic_prepare_request',
      config: pathConfig,
      required: true,
      purpose: "a gRPC call made (time, the caller's task, the path); span start and parent of h2-client's span",
    },
    {
      // A call's transport error becoming its Status (failed calls only):
      // server down -> UNAVAILABLE, a call that never got a stream.
      id: 'status_from_error',
      symbol: 'tonic::status::Status::from_error',
      site: 'entry',
      program: 'tonic_status_from_error',
      config: fromErrorConfig,
      requires: 'prepare_request',
      purpose: "a call's transport error made its Status, in the caller's task; tonic's ConnectError (server down) ends the call as UNAVAILABLE",
    },
  ],
};

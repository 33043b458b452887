// A gRPC client for the tonic fixture (shop.v1.Catalog), with @grpc/grpc-js
// and hand-encoded protobuf (no codegen): one channel carries any number of
// calls, as a long-lived client's would.
import * as grpc from '@grpc/grpc-js';

function varint(n: bigint): number[] {
  let v = BigInt.asUintN(64, n); // int64/int32 negatives: ten-byte two's complement
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

/** GetProductRequest { int64 id = 1 } */
export function getProductRequest(id: number): Buffer {
  return Buffer.from(id === 0 ? [] : [0x08, ...varint(BigInt(id))]);
}

/** ListProductsRequest { int32 count = 1; int32 fail_code = 2 } */
export function listProductsRequest(count: number, failCode: number): Buffer {
  return Buffer.from([...(count ? [0x08, ...varint(BigInt(count))] : []), ...(failCode ? [0x10, ...varint(BigInt(failCode))] : [])]);
}

const raw = (b: Buffer) => b;

export interface CallResult {
  code: number;
  details: string;
  messages: number;
}

export class CatalogClient {
  readonly client: grpc.Client;

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  unary(method: string, req: Buffer, metadata: Record<string, string> = {}): Promise<CallResult> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(`/shop.v1.Catalog/${method}`, raw, raw, req, md, (err, res) => {
        resolve(err ? { code: err.code, details: err.details, messages: 0 } : { code: 0, details: '', messages: res ? 1 : 0 });
      });
    });
  }

  serverStream(method: string, req: Buffer, metadata: Record<string, string> = {}): Promise<CallResult> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve) => {
      let messages = 0;
      const call = this.client.makeServerStreamRequest(`/shop.v1.Catalog/${method}`, raw, raw, req, md);
      call.on('data', () => { messages++; });
      call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details, messages }));
      call.on('status', (st: grpc.StatusObject) => { if (st.code === 0) resolve({ code: 0, details: '', messages }); });
    });
  }

  close(): void {
    this.client.close();
  }
}

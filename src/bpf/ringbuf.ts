// Reader for a BPF ring buffer, in plain JS over the mmap'd ring.
// libbpf's ring_buffer__consume calls back into JS once per event (about 1.5 µs
// each through FFI); reading the shared memory directly drains millions of
// events per second. Layout (kernel/bpf/ringbuf.c): page 0 = consumer_pos
// (we write it), page 1 = producer_pos, then the data area mapped twice so a
// record that wraps is contiguous. Each record: u32 len (bit 31 BUSY, bit 30
// DISCARD), u32 page offset, payload padded to 8 bytes.
import { c } from './libbpf';

const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
const BUSY = 0x80000000, DISCARD = 0x40000000, LEN_MASK = 0x3fffffff;
const HDR = 8;

export type RecordHandler = (view: DataView, offset: number, length: number) => void;

export class RingBufferReader {
  private readonly page: number;
  private consumerPtr: unknown;
  private dataPtr: unknown;
  private consumer: BigUint64Array;
  private producer: BigUint64Array;
  private header: Uint32Array;
  private view: DataView;
  private closed = false;

  constructor(mapFd: number, readonly size: number) {
    this.page = c.getpagesize();
    this.consumerPtr = c.mmap(null, this.page, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
    this.dataPtr = c.mmap(null, this.page + 2 * size, PROT_READ, MAP_SHARED, mapFd, this.page);
    if (isMapFailed(this.consumerPtr) || isMapFailed(this.dataPtr)) throw new Error('mmap of the ring buffer failed');
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const koffi = require('koffi');
    this.consumer = new BigUint64Array(koffi.view(this.consumerPtr, 8));
    const data: ArrayBuffer = koffi.view(this.dataPtr, this.page + 2 * size);
    this.producer = new BigUint64Array(data, 0, 1);
    this.header = new Uint32Array(data, this.page);
    this.view = new DataView(data, this.page);
  }

  /** Hands every complete record to `handle`; returns how many were read. */
  drain(handle: RecordHandler, max = Infinity): number {
    if (this.closed) return 0;
    let cons = Number(Atomics.load(this.consumer, 0));
    const prod = Number(Atomics.load(this.producer, 0));
    let n = 0;
    const mask = this.size - 1;
    while (cons < prod && n < max) {
      const off = cons & mask;
      const len = Atomics.load(this.header, off >> 2);
      if (len & BUSY) break; // the producer has reserved but not yet committed this record
      const size = len & LEN_MASK;
      if (!(len & DISCARD)) {
        handle(this.view, off + HDR, size);
        n++;
      }
      cons += (size + HDR + 7) & ~7;
      Atomics.store(this.consumer, 0, BigInt(cons));
    }
    return n;
  }

  /** Bytes written by the kernel and not yet read. */
  pending(): number {
    return Number(Atomics.load(this.producer, 0) - Atomics.load(this.consumer, 0));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    c.munmap(this.dataPtr, this.page + 2 * this.size);
    c.munmap(this.consumerPtr, this.page);
  }
}

function isMapFailed(p: unknown): boolean {
  // MAP_FAILED is (void *)-1; koffi gives pointers as opaque values or null.
  if (p === null) return true;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  const addr = koffi.address(p) as bigint;
  return addr === 0xffffffffffffffffn;
}

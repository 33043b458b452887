// OTEP 4719 process context, read from outside: find the OTEL_CTX mapping in
// /proc/<pid>/maps, then follow the spec's read protocol (timestamp, payload,
// timestamp again; 0 means an update is in progress).
import * as fs from 'node:fs';
import { RemoteMemory } from './remote';
import { decodeProcessContext, ProcessContextPayload } from './protobuf';

const NAMES = ['[anon_shmem:OTEL_CTX]', '[anon:OTEL_CTX]', '/memfd:OTEL_CTX'];
const HEADER = 32;
const MAX_PAYLOAD = 1 << 20;

export interface ProcessContext extends ProcessContextPayload {
  address: bigint;
  mappingName: string;
  version: number;
  publishedAtNs: bigint;
  payloadSize: number;
}

export function findContextMapping(pid: number): { address: bigint; name: string } | undefined {
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ (\S{4}) \S+ \S+ \S+\s+(.*)$/.exec(line);
    if (!m || m[2][2] === 'x') continue; // the context is never executable
    const name = m[3];
    if (NAMES.some((n) => name === n || name.startsWith(n + ' ') || (n === '/memfd:OTEL_CTX' && name.startsWith(n))))
      return { address: BigInt('0x' + m[1]), name };
  }
  return undefined;
}

export function readProcessContext(pid: number, mem: RemoteMemory): ProcessContext | undefined {
  const found = findContextMapping(pid);
  if (!found) return undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    const h = mem.read(found.address, HEADER);
    if (h.toString('latin1', 0, 8) !== 'OTEL_CTX') throw new Error(`OTEL_CTX mapping at 0x${found.address.toString(16)} has no OTEL_CTX signature`);
    const version = h.readUInt32LE(8);
    if (version !== 2) throw new Error(`process context version ${version} is not supported (expected 2)`);
    const ts = h.readBigUInt64LE(16);
    if (ts === 0n) { sleepMs(1); continue; } // being published or updated
    const size = h.readUInt32LE(12);
    const ptr = h.readBigUInt64LE(24);
    if (size === 0 || size > MAX_PAYLOAD) throw new Error(`process context payload size ${size} is out of range`);
    const payload = mem.read(ptr, size);
    const again = mem.read(found.address + 16n, 8).readBigUInt64LE(0);
    if (again !== ts) continue; // updated while we read: retry
    return { ...decodeProcessContext(payload), address: found.address, mappingName: found.name, version, publishedAtNs: ts, payloadSize: size };
  }
  throw new Error('the process context kept changing while being read');
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// `otel-rust-agent ctx --pid N`: the OpenTelemetry process context (OTEP 4719)
// and every thread's context record (OTEP 4947) of a running process, read
// from outside it.
import { RemoteMemory } from '../ctx/remote';
import { readProcessContext, ProcessContext } from '../ctx/process-context';
import { findTlsModules, readThreadRecords, keyMapOf, ThreadRecord, TlsModule } from '../ctx/thread-context';
import type { AnyValue } from '../ctx/protobuf';
import { requireProcess } from '../agent/target';
import { UserError, EXIT } from '../util/errors';

function show(v: AnyValue): string {
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex')}`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${show(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

function jsonable(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? (x >= -(2n ** 53n) && x <= 2n ** 53n ? Number(x) : x.toString()) : Buffer.isBuffer(x) ? x.toString('hex') : x)));
}

export function ctxCommand(pidArg: string | undefined, json: boolean, out: (s: string) => void): number {
  if (!pidArg || !/^\d+$/.test(pidArg)) throw new UserError('ctx needs --pid PID', EXIT.USAGE);
  const pid = Number(pidArg);
  requireProcess(pid);
  let mem: RemoteMemory;
  try { mem = new RemoteMemory(pid); } catch (e) {
    throw new UserError(`cannot read the memory of process ${pid}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (run as root)`, EXIT.PRIVILEGE);
  }
  try {
    let pctx: ProcessContext | undefined;
    let pctxError: string | undefined;
    try { pctx = readProcessContext(pid, mem); } catch (e) { pctxError = (e as Error).message; }
    const modules: TlsModule[] = findTlsModules(pid, mem);
    const keys = keyMapOf(pctx?.attributes);
    const threads: { module: TlsModule; records: ThreadRecord[] }[] = modules.map((m) => ({ module: m, records: readThreadRecords(pid, m, mem, keys) }));

    if (!pctx && !pctxError && modules.length === 0)
      throw new UserError(`process ${pid} publishes no OpenTelemetry context (no OTEL_CTX mapping, no ${'otel_thread_ctx_v1'} symbol in its modules)`, EXIT.TARGET);

    if (json) {
      out(JSON.stringify(jsonable({ pid, processContext: pctx ?? null, processContextError: pctxError ?? null, keyMap: keys, modules: threads.map((t) => ({ path: t.module.path, locator: t.module.locator, threads: t.records })) }), null, 2));
      return EXIT.OK;
    }
    out(`process ${pid}`);
    if (pctx) {
      out(`process context (OTEP 4719) at 0x${pctx.address.toString(16)} ${pctx.mappingName}, version ${pctx.version}, published at ${pctx.publishedAtNs} ns (CLOCK_BOOTTIME)`);
      out('  resource:');
      for (const [k, v] of Object.entries(pctx.resource)) out(`    ${k} = ${show(v)}`);
      out('  attributes:');
      for (const [k, v] of Object.entries(pctx.attributes)) out(`    ${k} = ${show(v)}`);
    } else {
      out(`process context: ${pctxError ? `unreadable: ${pctxError}` : 'none published'}`);
    }
    if (modules.length === 0) out('thread context: no loaded module defines otel_thread_ctx_v1');
    for (const { module: m, records } of threads) {
      const loc = m.locator.kind === 'static' ? `${m.locator.model}, TP offset ${m.locator.tpOffset}` : `${m.locator.model}, module ${m.locator.moduleId} offset ${m.locator.offset}`;
      out(`thread context (OTEP 4947) from ${m.path} (${loc})`);
      for (const r of records) {
        const head = `  tid ${r.tid} ${r.name.padEnd(16)}`;
        if (r.error) out(`${head} error: ${r.error}`);
        else if (r.recordAddress === 0n) out(`${head} none`);
        else if (!r.valid) out(`${head} record at 0x${r.recordAddress.toString(16)} not valid (being updated, or detached)`);
        else {
          const attrs = Object.entries(r.attributes ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
          out(`${head} trace ${r.traceId} span ${r.spanId} flags ${r.traceFlags!.toString(16).padStart(2, '0')}${attrs ? ` ${attrs}` : ''}${r.unknownKeys ? ` (unknown key indexes ${r.unknownKeys.join(',')})` : ''}`);
        }
      }
    }
    return EXIT.OK;
  } finally {
    mem.close();
  }
}

// The compatibility matrix: every fixture of every library (src/libs/<lib>/matrix.ts)
// × each compiler (rustup's, Debian's rustc-web 1.85 and 1.96) × each release
// profile, built for real, traced end to end, and written as a dated table
// into docs/compatibility.md (and build/matrix/results.json). Cells are never
// edited by hand: rerun this.
//
//   make test-matrix                       # everything (as root: it loads eBPF)
//   node dist/tools/test-matrix.js [--compilers 1.95,1.85] [--profiles default,fat] [--fixtures hyper014] [--out FILE] [--build-only] [--resume [--rerun-reported]]
//
// --resume keeps the rows of build/matrix/results.json (the previous run's, rewritten after
// every row) that have no failing cell, and runs only the others: an interrupted run continues.
// --rerun-reported (with --resume) keeps only the rows where every cell works: after a change
// that may turn "reported" cells into working ones.
//
// A cell is "works" when every expected span of its column arrived with
// exactly the expected attributes (and parent, where the request carried
// one); "reported" when the agent refused the binary or the probe and said
// why (and produced no wrong span); "fails" otherwise. Builds share one cargo
// target directory per compiler (apps/target for rustup's, build/cargo-<v>
// for the others), so each profile only rebuilds what it changes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { LIBRARIES } from '../src/libs';
import { SPAN_KINDS, type MatrixFixture, type SpanKind, type ExpectedSpan } from '../src/libs/matrix';
import { repoRoot } from '../src/util/paths';
import { profileBuild, toolchainEnv, type ProfileSettings, type Toolchain } from '../test/helpers/rustbuild';
import { startService, startAgent, rawExchange, runAgentSync } from '../test/helpers/procs';
import { startOtlpReceiver, type ReceivedSpan } from '../test/helpers/otlp-receiver';

interface Compiler { id: string; toolchain: Toolchain }
interface InspectModule { name: string; active: boolean; reason?: string; probes: { probe: string; status: string; reason?: string }[] }
const COMPILERS: Compiler[] = [{ id: '1.95', toolchain: 'rustup' }, { id: '1.85', toolchain: '1.85' }, { id: '1.96', toolchain: '1.96' }];

interface Profile { id: string; label: string; settings: ProfileSettings }
const PROFILES: Profile[] = [
  { id: 'default', label: 'release: cargo defaults (opt 3, 16 CGUs, strip = "debuginfo")', settings: {} },
  { id: 'cgu1', label: 'codegen-units = 1', settings: { codegenUnits: 1 } },
  { id: 'thin', label: 'lto = "thin"', settings: { lto: 'thin' } },
  { id: 'fat', label: 'lto = "fat", codegen-units = 1', settings: { lto: 'fat', codegenUnits: 1 } },
  { id: 's', label: 'opt-level = "s"', settings: { optLevel: 's' } },
  { id: 'z', label: 'opt-level = "z"', settings: { optLevel: 'z' } },
  { id: 'abort', label: 'panic = "abort"', settings: { panic: 'abort' } },
  { id: 'strip', label: 'strip = "symbols" (no symbol source)', settings: { strip: 'symbols' } },
  { id: 'strip-fat', label: 'lto = "fat", codegen-units = 1, strip = "symbols"', settings: { lto: 'fat', codegenUnits: 1, strip: 'symbols' } },
  { id: 'debug', label: 'debug = true', settings: { debug: true } },
];

type Outcome = 'works' | 'reported' | 'fails';
interface Cell { outcome: Outcome; why?: string }
interface RowResult {
  library: string;
  fixture: string;
  crateVersion: string;
  compiler: string;
  rustc: string;
  profile: string;
  buildSeconds: number;
  cells: Partial<Record<SpanKind, Cell>>;
  /** Which probes were attached, from `inspect --json`. */
  probes: string;
}

function fixtures(): { library: string; fixture: MatrixFixture }[] {
  const out: { library: string; fixture: MatrixFixture }[] = [];
  for (const lib of LIBRARIES) {
    const file = path.join(__dirname, '..', 'src', 'libs', lib.name, 'matrix.js');
    if (!fs.existsSync(file)) continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(file) as { MATRIX_FIXTURES?: MatrixFixture[] };
    for (const f of m.MATRIX_FIXTURES ?? []) out.push({ library: lib.name, fixture: f });
  }
  return out;
}

function resolvePort(v: unknown, port: number): unknown {
  return v === '$PORT' ? port : v;
}

function spanMatches(s: ReceivedSpan, e: ExpectedSpan): boolean {
  return Object.entries(e.match).every(([k, v]) => s.attributes[k] === v);
}

/** Why `s` is not exactly `e`, or undefined. `othersOwn`: attributes another column of the fixture checks. */
function spanDiff(s: ReceivedSpan, e: ExpectedSpan, port: number, othersOwn: Set<string>): string | undefined {
  const want: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.attributes)) want[k] = resolvePort(v, port);
  const keys = new Set(Object.keys(want));
  if (!e.partial) for (const k of Object.keys(s.attributes)) if (!othersOwn.has(k)) keys.add(k);
  for (const k of keys) {
    if (s.attributes[k] !== want[k]) return `${k} = ${JSON.stringify(s.attributes[k])}, expected ${JSON.stringify(want[k])}`;
  }
  if (e.name !== undefined && s.name !== e.name) return `name ${JSON.stringify(s.name)}, expected ${JSON.stringify(e.name)}`;
  if (e.parent && (s.traceId !== e.parent.traceId || s.parentSpanId !== e.parent.spanId))
    return `trace ${s.traceId} parent ${s.parentSpanId}, expected ${e.parent.traceId} / ${e.parent.spanId}`;
  return undefined;
}

/** Why a column cannot work in this binary, from `inspect --json` (a module it needs is inactive or has a probe not ready), or undefined. */
function unavailable(needs: string[] | undefined, modules: InspectModule[]): string | undefined {
  for (const name of needs ?? []) {
    const m = modules.find((x) => x.name === name);
    if (!m) return `${name}: not in inspect's modules`;
    if (!m.active) return `${name}: ${m.reason ?? 'inactive'}`;
    const notReady = m.probes.find((p) => p.status !== 'ready');
    if (notReady) return `${name}/${notReady.probe}: ${notReady.reason ?? notReady.status}`;
  }
  return undefined;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 400);
}

async function runCell(bin: string, fx: MatrixFixture): Promise<{ cells: Partial<Record<SpanKind, Cell>>; probes: string; version: string }> {
  const kinds = [...new Set(fx.spans.map((s) => s.kind))];
  const all = (c: Cell) => Object.fromEntries(kinds.map((k) => [k, c])) as Partial<Record<SpanKind, Cell>>;
  const ins = runAgentSync(['inspect', bin, '--json']);
  let probes = '?';
  let version = '?';
  let modules: InspectModule[] = [];
  try {
    const j = JSON.parse(ins.stdout) as { crates: Record<string, string[]>; modules: InspectModule[] };
    modules = j.modules;
    version = (j.crates[fx.crate] ?? []).join(', ') || '?';
    probes = j.modules.filter((m) => m.active).map((m) => m.probes.length ? `${m.name}: ${m.probes.filter((p) => p.status === 'ready').map((p) => p.probe).join('+')}` : m.name).join('; ') || 'none';
  } catch { /* reported through the run below */ }

  const recv = await startOtlpReceiver({ grpc: true });
  const svc = await startService(bin);
  const agent = startAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint]);
  try {
    const started = await Promise.race([
      agent.stderr.wait(/tracing (process|every process)/, 120_000).then(() => true),
      agent.exited.then(() => false),
    ]);
    if (!started) {
      const code = await agent.exited;
      const why = oneLine(agent.stderr.text.replace(/^otel-rust-agent: /gm, ''));
      return { cells: all({ outcome: code === 3 ? 'reported' : 'fails', why: `agent exit ${code}: ${why}` }), probes, version };
    }
    if (fx.exchange.kind !== 'http1-raw') throw new Error(`exchange ${fx.exchange.kind} is not implemented`);
    const res = await rawExchange(svc.port, fx.exchange.requests, fx.exchange.requests.length, 15_000);
    const statuses = res.map((r) => r.status);
    if (statuses.join() !== fx.exchange.statuses.join()) return { cells: all({ outcome: 'fails', why: `the fixture answered ${statuses.join(', ')}` }), probes, version };
    let spans: ReceivedSpan[] = [];
    try { spans = await recv.waitForSpans(fx.spans.filter((e) => !e.partial).length, 10_000); } catch { spans = recv.spans(); }
    const cells: Partial<Record<SpanKind, Cell>> = {};
    // One span per request: partial expectations add to another column's span.
    const wanted = fx.spans.filter((e) => !e.partial).length;
    for (const k of kinds) {
      const problems: string[] = [];
      const mine = fx.spans.filter((x) => x.kind === k);
      const othersOwn = new Set(fx.spans.filter((x) => x.kind !== k).flatMap((x) => Object.keys(x.attributes)).filter((a) => !mine.some((m) => a in m.attributes)));
      const why = unavailable(fx.requires?.[k], modules);
      // Without a module the column needs, its attributes must be absent (reported), never wrong.
      const absent = why !== undefined && mine.every((e) => spans.filter((s) => spanMatches(s, e)).every((s) => Object.keys(e.attributes).every((a) => !(a in s.attributes))));
      for (const e of mine) {
        const got = spans.filter((s) => spanMatches(s, e));
        if (got.length !== 1) { problems.push(`${JSON.stringify(e.match)}: ${got.length} spans`); continue; }
        if (absent) continue;
        const d = spanDiff(got[0], e, svc.port, othersOwn);
        if (d) problems.push(`${JSON.stringify(e.match)}: ${d}`);
      }
      if (spans.length > wanted) problems.push(`${spans.length} spans for ${wanted} requests`);
      cells[k] = problems.length ? { outcome: 'fails', why: problems.join('; ') } : absent ? { outcome: 'reported', why } : { outcome: 'works' };
    }
    return { cells, probes, version };
  } finally {
    await agent.stop();
    await svc.stop();
    await recv.close();
  }
}

function rustcOf(tc: Toolchain): string {
  const env = { ...process.env, ...toolchainEnv(tc) };
  return execFileSync(env.RUSTC ?? 'rustc', ['--version'], { env, encoding: 'utf8' }).trim();
}

// ---------------------------------------------------------------------------
// The table

const MARK: Record<Outcome, string> = { works: 'works', reported: 'reported', fails: '**fails**' };

export function renderMarkdown(rows: RowResult[], meta: { date: string; command: string; seconds: number; compilers: string[]; partial: string | undefined; resumed?: number }): string {
  const kinds = SPAN_KINDS;
  const count = { works: 0, reported: 0, fails: 0 } as Record<Outcome, number>;
  const notes: string[] = [];
  const lines: string[] = [];
  lines.push('# Compatibility', '');
  lines.push(`<!-- Generated by tools/test-matrix.ts; do not edit by hand: rerun \`make test-matrix\`. -->`, '');
  lines.push(`Generated on ${meta.date} by \`${meta.command}\` in ${Math.round(meta.seconds / 60)} minutes${meta.partial ? ` (a partial run: ${meta.partial})` : ''}` +
    `${meta.resumed ? `; ${meta.resumed} rows without a failing cell were kept from the interrupted run before (\`--resume\`)` : ''}.`);
  lines.push('Every row is a real build of a fixture app from `apps/`, traced end to end by the agent (real kernel, real eBPF), ' +
    'its spans received over OTLP and compared attribute by attribute with what the requests must produce.', '');
  lines.push(`Compilers: ${meta.compilers.map((c) => `\`${c}\``).join(', ')}.`, '');
  lines.push('**works**: every expected span of the column arrived, exactly. **reported**: the agent refused the binary or the probe and said why (the reason is in the notes), and sent no wrong span. ' +
    '**fails**: anything else. A dash: the fixture does not exercise that span kind (no fixture for it yet).', '');
  const summaryAt = lines.length;
  lines.push('| library | rustc | profile | ' + kinds.join(' | ') + ' | probes attached |');
  lines.push('|---|---|---|' + kinds.map(() => '---|').join('') + '---|');
  for (const r of rows) {
    const cells = kinds.map((k) => {
      const c = r.cells[k];
      if (!c) return '—';
      count[c.outcome]++;
      if (!c.why) return MARK[c.outcome];
      let n = notes.indexOf(c.why);
      if (n < 0) { notes.push(c.why); n = notes.length - 1; }
      return `${MARK[c.outcome]} [${n + 1}]`;
    });
    lines.push(`| ${r.fixture.replace('{version}', r.crateVersion)} | ${r.compiler} | ${r.profile} | ${cells.join(' | ')} | ${r.probes} |`);
  }
  lines.splice(summaryAt, 0, `Summary: **${count.works} cells work, ${count.reported} are reported, ${count.fails} fail.**`, '');
  if (notes.length) {
    lines.push('', '## Notes', '');
    notes.forEach((n, i) => lines.push(`${i + 1}. ${n}`));
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------

interface Args { compilers: Compiler[]; profiles: Profile[]; fixtures: string[] | undefined; out: string; buildOnly: boolean; resume: boolean; rerunReported: boolean }

function parseArgs(argv: string[]): Args {
  const a: Args = { compilers: COMPILERS, profiles: PROFILES, fixtures: undefined, out: path.join(repoRoot(), 'docs', 'compatibility.md'), buildOnly: false, resume: false, rerunReported: false };
  for (let i = 0; i < argv.length; i++) {
    const v = () => { const x = argv[++i]; if (!x) throw new Error(`${argv[i - 1]} needs a value`); return x; };
    switch (argv[i]) {
      case '--compilers': { const ids = v().split(','); a.compilers = COMPILERS.filter((c) => ids.includes(c.id)); if (a.compilers.length !== ids.length) throw new Error(`--compilers: known ${COMPILERS.map((c) => c.id).join(', ')}`); break; }
      case '--profiles': { const ids = v().split(','); a.profiles = PROFILES.filter((p) => ids.includes(p.id)); if (a.profiles.length !== ids.length) throw new Error(`--profiles: known ${PROFILES.map((p) => p.id).join(', ')}`); break; }
      case '--fixtures': a.fixtures = v().split(','); break;
      case '--out': a.out = path.resolve(v()); break;
      case '--build-only': a.buildOnly = true; break;
      case '--resume': a.resume = true; break;
      case '--rerun-reported': a.rerunReported = true; break;
      default: throw new Error(`unknown argument ${argv[i]} (--compilers, --profiles, --fixtures, --out, --build-only, --resume, --rerun-reported)`);
    }
  }
  return a;
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try { args = parseArgs(argv); } catch (e) { process.stderr.write(`test-matrix: ${(e as Error).message}\n`); return 2; }
  const t0 = Date.now();
  const all = fixtures().filter((f) => !args.fixtures || args.fixtures.includes(f.fixture.id));
  const rows: RowResult[] = [];
  const total = args.compilers.length * all.length * args.profiles.length;
  const compilersSeen: string[] = [];
  const writeTable = (rs: RowResult[], progress?: string): void => {
    if (args.buildOnly) return;
    const partial = progress ?? (args.compilers.length !== COMPILERS.length || args.profiles.length !== PROFILES.length || args.fixtures !== undefined ? 'only the compilers, profiles and fixtures asked for' : undefined);
    const md = renderMarkdown(rs, {
      date: new Date().toISOString().slice(0, 10), command: `make test-matrix${argv.length ? ` MATRIX_ARGS='${argv.join(' ')}'` : ''}`,
      seconds: (Date.now() - t0) / 1000, compilers: compilersSeen, partial, resumed,
    });
    fs.mkdirSync(path.dirname(args.out), { recursive: true });
    fs.writeFileSync(`${args.out}.tmp`, md);
    fs.renameSync(`${args.out}.tmp`, args.out);
  };
  const jsonOut = path.join(repoRoot(), 'build', 'matrix', 'results.json');
  fs.mkdirSync(path.dirname(jsonOut), { recursive: true });
  let previous: RowResult[] = [];
  if (args.resume && fs.existsSync(jsonOut)) {
    try { previous = (JSON.parse(fs.readFileSync(jsonOut, 'utf8')) as RowResult[]).filter((r) => Object.values(r.cells).every((c) => (args.rerunReported ? c!.outcome === 'works' : c!.outcome !== 'fails'))); }
    catch (e) { process.stderr.write(`test-matrix: --resume: ${jsonOut} unreadable (${(e as Error).message}): running everything\n`); }
  }
  let resumed = 0;
  const compilers: string[] = [];
  for (const c of args.compilers) {
    let rustc: string;
    try { rustc = rustcOf(c.toolchain); } catch (e) { process.stderr.write(`test-matrix: no rustc ${c.id}: ${(e as Error).message}\n`); return 1; }
    compilers.push(rustc);
    compilersSeen.push(rustc);
    for (const { library, fixture } of all) {
      for (const p of args.profiles) {
        const kept = previous.find((r) => r.compiler === c.id && r.rustc === rustc && r.fixture === fixture.label && r.profile === p.label);
        if (kept && !args.buildOnly) {
          rows.push(kept);
          resumed++;
          process.stderr.write(`test-matrix: ${fixture.id} / ${c.id} / ${p.id}: kept from the previous run\n`);
          continue;
        }
        const s = Date.now();
        process.stderr.write(`test-matrix: ${fixture.id} / ${c.id} / ${p.id}: building\n`);
        let row: RowResult;
        try {
          const bin = profileBuild(fixture.app as 'demo-service', `matrix-${p.id}`, p.settings, c.toolchain);
          const buildSeconds = Math.round((Date.now() - s) / 1000);
          if (args.buildOnly) { process.stderr.write(`test-matrix: built ${bin} in ${buildSeconds}s\n`); continue; }
          const r = await runCell(bin, fixture);
          row = { library, fixture: fixture.label, crateVersion: r.version, compiler: c.id, rustc, profile: p.label, buildSeconds, cells: r.cells, probes: r.probes };
        } catch (e) {
          const why = `fixture did not build or run: ${oneLine((e as Error).message)}`;
          row = { library, fixture: fixture.label, crateVersion: '?', compiler: c.id, rustc, profile: p.label, buildSeconds: Math.round((Date.now() - s) / 1000),
            cells: Object.fromEntries([...new Set(fixture.spans.map((x) => x.kind))].map((k) => [k, { outcome: 'fails', why }])), probes: '?' };
        }
        rows.push(row);
        // The table is rewritten after every row, so an interrupted run still leaves what it measured.
        writeTable(rows, `${rows.length} of ${total} rows so far`);
        process.stderr.write(`test-matrix: ${fixture.id} / ${c.id} / ${p.id}: ${Object.entries(row.cells).map(([k, v]) => `${k} ${v!.outcome}${v!.why ? ` (${v!.why})` : ''}`).join(', ')} [build ${row.buildSeconds}s]\n`);
        fs.writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
      }
    }
  }
  if (args.buildOnly) return 0;
  writeTable(rows);
  const fails = rows.flatMap((r) => Object.values(r.cells)).filter((c) => c!.outcome === 'fails').length;
  process.stdout.write(`test-matrix: ${rows.length} rows written to ${args.out}; ${fails} failing cell(s)\n`);
  return 0;
}

if (require.main === module) main(process.argv.slice(2)).then((c) => process.exit(c), (e) => { process.stderr.write(`test-matrix: ${(e as Error).stack}\n`); process.exit(1); });

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
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { profileBuild, profileBuildGroup, toolchainEnv, type ProfileSettings, type Toolchain } from '../test/helpers/rustbuild';
import { startService, startAgent, rawExchange, runAgentSync, serviceBinary, freshStats } from '../test/helpers/procs';
import { startOtlpReceiver, type ReceivedSpan } from '../test/helpers/otlp-receiver';
import { connectH2, h2Request, closeH2 } from '../test/helpers/h2client';
import { CatalogClient, getProductRequest, listProductsRequest } from '../test/helpers/grpc-client';
import type { Downstream, Exchange } from '../src/libs/matrix';

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

/** The fixture's and the downstream's ports, for "$PORT" and "$DOWN" in requests and expectations. */
interface Ports { port: number; down: number }

/** "$PORT" / "$DOWN" alone: the port as a number; inside a string: its digits. */
function resolve(v: unknown, p: Ports): unknown {
  if (v === '$PORT') return p.port;
  if (v === '$DOWN') return p.down;
  return typeof v === 'string' ? v.split('$PORT').join(String(p.port)).split('$DOWN').join(String(p.down)) : v;
}

function spanMatches(s: ReceivedSpan, match: Record<string, unknown>, p: Ports): boolean {
  return Object.entries(match).every(([k, v]) => s.attributes[k] === resolve(v, p));
}

/** Why `s` is not exactly `e`, or undefined. `othersOwn`: attributes another column of the fixture checks. */
function spanDiff(s: ReceivedSpan, e: ExpectedSpan, p: Ports, othersOwn: Set<string>, all: ReceivedSpan[]): string | undefined {
  const want: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.attributes)) want[k] = resolve(v, p);
  const keys = new Set(Object.keys(want));
  if (!e.partial) for (const k of Object.keys(s.attributes)) if (!othersOwn.has(k)) keys.add(k);
  for (const k of keys) {
    if (s.attributes[k] !== want[k]) return `${k} = ${JSON.stringify(s.attributes[k])}, expected ${JSON.stringify(want[k])}`;
  }
  if (e.name !== undefined && s.name !== e.name) return `name ${JSON.stringify(s.name)}, expected ${JSON.stringify(e.name)}`;
  if (e.parent && (s.traceId !== e.parent.traceId || s.parentSpanId !== e.parent.spanId))
    return `trace ${s.traceId} parent ${s.parentSpanId}, expected ${e.parent.traceId} / ${e.parent.spanId}`;
  if (e.spanKind !== undefined && s.kind !== e.spanKind) return `span kind ${s.kind}, expected ${e.spanKind}`;
  if (e.root) {
    if (s.parentSpanId) return `parent ${s.parentSpanId}, expected a root span`;
    const theirs = all.filter((x) => x !== s && x.parentSpanId && !all.some((y) => y.spanId === x.parentSpanId)).map((x) => x.traceId);
    if (theirs.includes(s.traceId)) return `trace ${s.traceId} is another request's remote parent's trace, expected a trace of its own`;
  }
  if (e.childOf) {
    const ps = all.filter((x) => spanMatches(x, e.childOf!, p));
    if (ps.length !== 1) return `${ps.length} spans match the expected parent ${JSON.stringify(e.childOf)}`;
    if (s.traceId !== ps[0].traceId || s.parentSpanId !== ps[0].spanId)
      return `trace ${s.traceId} parent ${s.parentSpanId || '(none: a root)'}, expected the span of ${JSON.stringify(e.childOf)} (${ps[0].traceId} / ${ps[0].spanId})`;
  }
  return undefined;
}

/** Why a column cannot work in this binary, from `inspect --json` (a module it needs is inactive or has a probe not ready), or undefined. */
function unavailable(needs: string[] | undefined, modules: InspectModule[]): string | undefined {
  for (const name of needs ?? []) {
    const m = modules.find((x) => x.name === name);
    if (!m) return `${name}: not in inspect's modules`;
    if (!m.active) return `${name}: ${m.reason ?? 'inactive'}`;
    // An active module has every probe it requires (else inspect says "required probe not available"):
    // a probe missing there is an optional one (reqwest's blocking client in an async-only binary,
    // say), which says nothing about the column. Only a module with probes none of which is ready counts.
    if (m.probes.length && !m.probes.some((p) => p.status === 'ready')) return `${name}: no probe ready (${m.probes.map((p) => `${p.probe}: ${p.reason ?? p.status}`).join('; ')})`;
  }
  return undefined;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 400);
}

/** The fixture's downstream (client fixtures), untraced; "$DOWN" is its port. */
async function startDownstream(d: Downstream | undefined): Promise<{ port: number; stop: () => Promise<void> }> {
  if (!d) return { port: 0, stop: async () => {} };
  if (d.kind === 'http') {
    const srv = http.createServer((req, res) => {
      const st = d.statuses[new URL(req.url!, 'http://x').pathname] ?? 404;
      res.writeHead(st);
      res.end(String(st));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { port: (srv.address() as AddressInfo).port, stop: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
  }
  const svc = await startService(downstreamTonic());
  return { port: svc.port, stop: async () => { await svc.stop(); } };
}

/** A copy of the default-profile tonic-server (the target directory's is overwritten by the profile builds). */
let tonicCopy: string | undefined;
function downstreamTonic(): string {
  if (!tonicCopy) {
    tonicCopy = path.join(repoRoot(), 'build', 'matrix', 'downstream', 'tonic-server');
    if (!fs.existsSync(tonicCopy)) {
      fs.mkdirSync(path.dirname(tonicCopy), { recursive: true });
      fs.copyFileSync(serviceBinary('tonic-server'), tonicCopy);
    }
  }
  return tonicCopy;
}

/** Drives the exchange; the statuses (or gRPC codes) the fixture answered, to compare with the expected ones. */
async function exchange(x: Exchange, p: Ports): Promise<{ got: number[]; want: number[] }> {
  if (x.kind === 'http1-raw') {
    const res = await rawExchange(p.port, x.requests.map((r) => String(resolve(r, p))), x.requests.length, 15_000);
    return { got: res.map((r) => r.status), want: x.statuses };
  }
  if (x.kind === 'h2c') {
    const session = await connectH2(`http://127.0.0.1:${p.port}`);
    const got: number[] = [];
    try {
      for (const h of x.requests) got.push((await h2Request(session, Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(resolve(v, p))])))).status);
    } finally { await closeH2(session).catch(() => {}); }
    return { got, want: x.statuses };
  }
  const client = new CatalogClient(`127.0.0.1:${p.port}`);
  const got: number[] = [];
  try {
    for (const c of x.calls) {
      const r = c.method === 'GetProduct' ? await client.unary(c.method, getProductRequest(c.id ?? 0), c.metadata)
        : await client.serverStream(c.method, listProductsRequest(c.count ?? 0, c.failCode ?? 0), c.metadata);
      got.push(r.code);
    }
  } finally { client.close(); }
  return { got, want: x.codes };
}

export async function runCell(bin: string, fx: MatrixFixture): Promise<{ cells: Partial<Record<SpanKind, Cell>>; probes: string; version: string }> {
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
  const down = await startDownstream(fx.exchange.kind === 'http1-raw' ? fx.exchange.downstream : undefined);
  const svc = await startService(bin);
  const ports: Ports = { port: svc.port, down: down.port };
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
    const ex = await exchange(fx.exchange, ports);
    if (ex.got.join() !== ex.want.join()) return { cells: all({ outcome: 'fails', why: `the fixture answered ${ex.got.join(', ')}, expected ${ex.want.join(', ')}` }), probes, version };
    let spans: ReceivedSpan[] = [];
    try { spans = await recv.waitForSpans(fx.spans.filter((e) => !e.partial).length, 10_000); } catch { spans = recv.spans(); }
    // Anything extra (a duplicate, a stray span) shows up now.
    await new Promise((r) => setTimeout(r, 500));
    spans = recv.spans();
    // Probe hits whose reads did not fit the expected layout (the agent drops those events, and
    // counts them): what a failing cell's note names, since inspect did not refuse the probe.
    let badLayout = '';
    try {
      const st = await freshStats(agent, 5_000);
      badLayout = st.probes.filter((p) => p.badLayout > 0).map((p) => `${p.module}/${p.probe}: ${p.badLayout} of ${p.hits} hits read a bad layout (events dropped)`).join('; ');
    } catch { /* no stats: nothing to add */ }
    const cells: Partial<Record<SpanKind, Cell>> = {};
    // One span per request: partial expectations add to another column's span.
    const wanted = fx.spans.filter((e) => !e.partial).length;
    for (const k of kinds) {
      const problems: string[] = [];
      const mine = fx.spans.filter((x) => x.kind === k);
      const othersOwn = new Set(fx.spans.filter((x) => x.kind !== k).flatMap((x) => Object.keys(x.attributes)).filter((a) => !mine.some((m) => a in m.attributes)));
      const why = unavailable(fx.requires?.[k], modules);
      // Without a module the column needs, its spans or attributes must be absent (reported), never wrong:
      // no span at all (a CLIENT span without the client module), or the span without the column's
      // attributes, or (a parent-link column, which has no attributes of its own) a root: no link made.
      const isAbsent = (e: ExpectedSpan, got: ReceivedSpan[]): boolean => got.length === 0 ||
        (got.length === 1 && Object.keys(e.attributes).every((a) => !(a in got[0].attributes)) && (!e.childOf || got[0].parentSpanId === ''));
      let absentN = 0;
      for (const e of mine) {
        const got = spans.filter((s) => spanMatches(s, e.match, ports));
        if (why !== undefined && isAbsent(e, got)) { absentN++; continue; }
        if (got.length !== 1) { problems.push(`${resolve(JSON.stringify(e.match), ports)}: ${got.length} spans`); continue; }
        const d = spanDiff(got[0], e, ports, othersOwn, spans);
        if (d) problems.push(`${resolve(JSON.stringify(e.match), ports)}: ${d}`);
      }
      if (absentN > 0 && absentN < mine.length) problems.push(`${absentN} of ${mine.length} expected spans missing (${why})`);
      if (spans.length > wanted) problems.push(`${spans.length} spans for ${wanted} requests`);
      if (problems.length && badLayout) problems.push(`at run time: ${badLayout}`);
      cells[k] = problems.length ? { outcome: 'fails', why: problems.join('; ') } : absentN ? { outcome: 'reported', why } : { outcome: 'works' };
    }
    if (process.env.MATRIX_DUMP_SPANS) for (const s of spans) process.stderr.write(`span ${s.kind} ${s.name} trace=${s.traceId} id=${s.spanId} parent=${s.parentSpanId || "-"} ${JSON.stringify(s.attributes)}\n`);
    return { cells, probes, version };
  } finally {
    await agent.stop();
    await svc.stop();
    await down.stop();
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

export function renderMarkdown(rows: RowResult[], meta: { date: string; command: string; seconds: number; compilers: string[]; partial: string | undefined; resumed?: number; previous?: string[]; notRun?: string[] }): string {
  const kinds = SPAN_KINDS;
  const count = { works: 0, reported: 0, fails: 0 } as Record<Outcome, number>;
  const notes: string[] = [];
  const lines: string[] = [];
  lines.push('# Compatibility', '');
  lines.push(`<!-- Generated by tools/test-matrix.ts; do not edit by hand: rerun \`make test-matrix\`. -->`, '');
  lines.push(`Generated on ${meta.date} by \`${meta.command}\` in ${Math.round(meta.seconds / 60)} minutes${meta.partial ? ` (a partial run: ${meta.partial})` : ''}` +
    `${meta.resumed ? `; ${meta.resumed} rows without a failing cell were kept from the interrupted run before (\`--resume\`)` : ''}.`);
  if (meta.previous?.length) {
    lines.push('', 'This run was merged into the table before it (`--merge`): its rows replaced the same library / rustc / profile rows or were added, every other row is kept as it was measured.');
    for (const g of meta.previous) lines.push(`- Rows kept from: ${g}`);
    lines.push('');
  }
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
  lines.splice(summaryAt, 0, `Summary: **${count.works} cells work, ${count.reported} are reported, ${count.fails} fail.**` +
    `${meta.notRun?.length ? ' Fixtures × compilers × profiles not run yet are listed under "Not run" below (no row, no cell).' : ''}`, '');
  if (meta.notRun?.length) {
    lines.push('', '## Not run', '', 'These fixture rows have not been built and run yet (rerun with `MATRIX_FIXTURES=<id> make test-matrix MATRIX_ARGS=\'--merge ...\'`):', '');
    for (const n of meta.notRun) lines.push(`- ${n}`);
  }
  if (notes.length) {
    lines.push('', '## Notes', '');
    notes.forEach((n, i) => lines.push(`${i + 1}. ${n}`));
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------

interface Args { compilers: Compiler[]; profiles: Profile[]; fixtures: string[] | undefined; out: string; buildOnly: boolean; resume: boolean; rerunReported: boolean; groupBuilds: boolean; merge: boolean }

function parseArgs(argv: string[]): Args {
  const a: Args = { compilers: COMPILERS, profiles: PROFILES, fixtures: undefined, out: path.join(repoRoot(), 'docs', 'compatibility.md'), buildOnly: false, resume: false, rerunReported: false, groupBuilds: false, merge: false };
  // MATRIX_FIXTURES=h2-axum,tonic-server selects fixtures like --fixtures (which wins).
  if (process.env.MATRIX_FIXTURES) a.fixtures = process.env.MATRIX_FIXTURES.split(',').filter(Boolean);
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
      case '--group-builds': a.groupBuilds = true; break;
      case '--merge': a.merge = true; break;
      default: throw new Error(`unknown argument ${argv[i]} (--compilers, --profiles, --fixtures, --out, --build-only, --resume, --rerun-reported, --group-builds, --merge)`);
    }
  }
  return a;
}

/** A row of a table this tool wrote before (--merge): what the markdown keeps of it. */
export function parseTable(md: string): { rows: RowResult[]; compilers: string[]; generated: string[] } {
  const lines = md.split('\n');
  const notes = new Map<number, string>();
  const at = lines.indexOf('## Notes');
  if (at >= 0) for (const l of lines.slice(at + 1)) { const m = /^(\d+)\. (.*)$/.exec(l); if (m) notes.set(Number(m[1]), m[2]); }
  const compilers = [...(lines.find((l) => l.startsWith('Compilers: ')) ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  // The run that made the table, and the runs whose rows it kept.
  const generated = lines.filter((l) => l.startsWith('Generated on ') || l.startsWith('- Rows kept from: ')).map((l) => l.replace(/^- Rows kept from: /, ''));
  const header = lines.findIndex((l) => l.startsWith('| library | rustc | profile | '));
  const rows: RowResult[] = [];
  if (header < 0) return { rows, compilers, generated };
  const kinds = lines[header].split('|').slice(4, -2).map((x) => x.trim()) as SpanKind[];
  for (const l of lines.slice(header + 2)) {
    if (!l.startsWith('| ')) break;
    const f = l.split(' | ');
    f[0] = f[0].slice(2);
    f[f.length - 1] = f[f.length - 1].replace(/ \|$/, '');
    const cells: Partial<Record<SpanKind, Cell>> = {};
    kinds.forEach((k, n) => {
      const m = /^(works|reported|\*\*fails\*\*|not run)(?: \[(\d+)\])?$/.exec(f[3 + n]);
      if (!m || m[1] === 'not run') return;
      const outcome = (m[1] === '**fails**' ? 'fails' : m[1]) as Outcome;
      cells[k] = m[2] ? { outcome, why: notes.get(Number(m[2])) } : { outcome };
    });
    rows.push({ library: '', fixture: f[0], crateVersion: '', compiler: f[1], rustc: '', profile: f[2], buildSeconds: 0, cells, probes: f[3 + kinds.length] });
  }
  return { rows, compilers, generated };
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try { args = parseArgs(argv); } catch (e) { process.stderr.write(`test-matrix: ${(e as Error).message}\n`); return 2; }
  const t0 = Date.now();
  const every = fixtures();
  const all = every.filter((f) => !args.fixtures || args.fixtures.includes(f.fixture.id));
  if (args.fixtures) for (const id of args.fixtures) if (!every.some((f) => f.fixture.id === id)) {
    process.stderr.write(`test-matrix: no fixture ${id} (known: ${every.map((f) => f.fixture.id).join(', ')})\n`);
    return 2;
  }
  const rows: RowResult[] = [];
  const total = args.compilers.length * all.length * args.profiles.length;
  const compilersSeen: string[] = [];
  // --merge: the rows of the table already in --out are kept, this run's replace the same
  // (library, rustc, profile) rows or are added; what no run measured is listed as not run.
  const merged = args.merge && fs.existsSync(args.out) ? parseTable(fs.readFileSync(args.out, 'utf8')) : undefined;
  if (merged) for (const c of merged.compilers) if (!compilersSeen.includes(c)) compilersSeen.push(c);
  const label = (r: RowResult) => r.fixture.replace('{version}', r.crateVersion);
  const key = (r: RowResult) => `${label(r)}\u0000${r.compiler}\u0000${r.profile}`;
  const tableRows = (rs: RowResult[]): RowResult[] => {
    if (!merged) return rs;
    const out = [...merged.rows];
    for (const r of rs) { const n = out.findIndex((o) => key(o) === key(r)); if (n >= 0) out[n] = r; else out.push(r); }
    return out;
  };
  const notRun = (rs: RowResult[]): string[] => {
    const out: string[] = [];
    for (const { fixture } of merged ? every : []) {
      const re = new RegExp(`^${fixture.label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('\\{version\\}', '.*')}$`);
      const per: string[] = [];
      for (const c of COMPILERS) {
        const missing = PROFILES.filter((p) => !rs.some((r) => re.test(label(r)) && r.compiler === c.id && r.profile === p.label)).map((p) => p.id);
        const cannot = fixture.cannotBuild?.[c.id];
        if (cannot && missing.length) per.push(`rustc ${c.id}: cannot be built: ${cannot}`);
        else if (missing.length === PROFILES.length) per.push(`rustc ${c.id}: every profile`);
        else if (missing.length) per.push(`rustc ${c.id}: ${missing.join(', ')}`);
      }
      if (per.length) out.push(`${fixture.label.replace(' {version}', '')} (\`${fixture.id}\`): ${per.join('; ')}`);
    }
    return out;
  };
  const writeTable = (rs: RowResult[], progress?: string): void => {
    if (args.buildOnly) return;
    const partial = progress ?? (args.compilers.length !== COMPILERS.length || args.profiles.length !== PROFILES.length || args.fixtures !== undefined ? 'only the compilers, profiles and fixtures asked for' : undefined);
    const shown = tableRows(rs);
    const md = renderMarkdown(shown, {
      date: new Date().toISOString().slice(0, 10), command: `make test-matrix${argv.length ? ` MATRIX_ARGS='${argv.join(' ')}'` : ''}${process.env.MATRIX_FIXTURES ? ` MATRIX_FIXTURES=${process.env.MATRIX_FIXTURES}` : ''}`,
      seconds: (Date.now() - t0) / 1000, compilers: compilersSeen, partial, resumed,
      previous: merged?.generated, notRun: merged ? notRun(shown) : undefined,
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
    if (!compilersSeen.includes(rustc)) compilersSeen.push(rustc);
    // --group-builds: profile by profile, every fixture app of the profile built by one cargo
    // invocation (dependencies compiled once for all of them); otherwise fixture by fixture.
    const buildable = all.filter((f) => {
      const why = f.fixture.cannotBuild?.[c.id];
      if (why) process.stderr.write(`test-matrix: ${f.fixture.id} / ${c.id}: not run: ${why}\n`);
      return !why;
    });
    const order = args.groupBuilds ? args.profiles.flatMap((p) => buildable.map((f) => ({ ...f, p }))) : buildable.flatMap((f) => args.profiles.map((p) => ({ ...f, p })));
    const groupBins = new Map<string, Record<string, string> | Error>();
    for (const { library, fixture, p } of order) {
      {
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
          let bin: string;
          if (args.groupBuilds) {
            if (!groupBins.has(p.id)) {
              const apps = [...new Set(buildable.map((f) => f.fixture.app))];
              try { groupBins.set(p.id, profileBuildGroup(apps, `matrix-${p.id}`, p.settings, c.toolchain)); } catch (e) { groupBins.set(p.id, e as Error); }
            }
            const g = groupBins.get(p.id)!;
            if (g instanceof Error) throw g;
            bin = g[fixture.app];
          } else {
            bin = profileBuild(fixture.app as 'demo-service', `matrix-${p.id}`, p.settings, c.toolchain);
          }
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

/*
 * pipe.test.ts: a replay whose lines are read and parsed by the worker (cli/pipe/)
 * reports exactly what the in-process replay reports: counts, divergences, errors
 * with line and field, violations, state hash, and every entry event; on fixtures,
 * generated traces (several batches), a malformed line in the middle, comments,
 * blanks, CRLF and UTF-8, unreadable paths, an early stop far ahead of the worker, and
 * through the CLI (timeline, --quiet, --json, --invariants, progress bar, exit status);
 * a worker started early (main.ts) serves the replay of its file, and one left untaken
 * keeps nobody waiting.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { nodeIo, StringOut, type Io } from '../cli/io.js';
import { PipedSource } from '../cli/pipe/index.js';
import { startEarly, workerFor } from '../cli/pipe/start.js';
import { replayLines, replaySource, type EntryEvent, type FileReport, type ReplayOptions } from '../cli/replay.js';
import { run } from '../cli/run.js';
import { printEntry } from '../events/index.js';
import { step } from '../core/index.js';
import { checkAfter } from '../properties/index.js';
import { fixtureFiles, genLines } from './kit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iommufd-sim-pipe-'));
let files = 0;
function file(text: string): string {
  const p = path.join(dir, `t${files++}.jsonl`);
  fs.writeFileSync(p, text);
  return p;
}

/** What a report says (the World itself is covered by its state hash). */
function said(r: FileReport): unknown {
  return { ...r, world: undefined };
}

/** One line per entry event: the entry as parsed (printed canonically, plus its line), outcome, divergence. */
function events(into: string[]): ReplayOptions['onEntry'] {
  return (ev: EntryEvent) =>
    into.push(`${ev.entry.line} ${printEntry(ev.entry)} ${JSON.stringify(ev.outcome, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))} ${JSON.stringify(ev.divergence)}`);
}

/** Replays a file both ways; asserts the same report and events; returns the report. */
function same(p: string, opts: ReplayOptions = {}): FileReport {
  const a: string[] = [];
  const b: string[] = [];
  const inProcess = replayLines(p, nodeIo().readLines(p), { ...opts, onEntry: events(a) });
  const piped = replaySource(p, new PipedSource(p), { ...opts, onEntry: events(b) });
  assert.equal(said(piped), said(inProcess), p);
  assert.equal(b, a, `${p}: entry events`);
  return piped;
}

test('fixtures: the same reports, good and bad (header errors, trace errors, unbound variables)', () => {
  const { good, bad } = fixtureFiles();
  const picked = [...bad, ...good.filter((p) => !p.includes('/selftest/')), ...good.filter((p) => p.includes('/selftest/')).slice(0, 8)];
  let errors = 0;
  for (const p of picked) if (same(p, { invariants: checkAfter }).error) errors++;
  assert.is(errors, bad.length);
});

test('a generated trace over several batches, with divergences, then a malformed line in the middle', () => {
  const lines = genLines('vm-churn', 9000, 3);
  const clean = same(file(lines.join('\n') + '\n'));
  assert.is(clean.entries, 9000);
  // Divergences: change some expected outputs.
  const diverging = lines.map((l, i) => (i % 997 === 5 ? l.replace('"ok":true', '"errno":"EBUSY"') : l));
  assert.ok(same(file(diverging.join('\n'))).divergences.length > 5);
  // A malformed line: the entries before it are replayed, the error names its line.
  const broken = [...lines.slice(0, 5001), '{"op": "dma", "dev": ', ...lines.slice(5001)];
  const r = same(file(broken.join('\n') + '\n'));
  assert.is(r.entries, 5000);
  assert.is(r.error?.line, 5002);
  assert.is(r.error?.kind, 'trace');
  // A field error: the field is named.
  const badField = [...lines.slice(0, 8501), '{"op": "dma", "dev": "d", "dir": "up"}', ...lines.slice(8501)];
  const f = same(file(badField.join('\n') + '\n'));
  assert.equal([f.entries, f.error?.line, f.error?.field], [8500, 8502, 'dir']);
});

test('comments, blank lines, CRLF, UTF-8 and no final newline count as lines the same way', () => {
  const lines = genLines('basic', 3000, 5);
  const mixed: string[] = [];
  lines.forEach((l, i) => {
    if (i % 5 === 0) mixed.push('# comment ünï €𝄞');
    if (i % 7 === 0) mixed.push('', '   ');
    mixed.push(i % 3 === 0 ? `${l}\r` : l);
  });
  const r = same(file(['', '# leading comment', ...mixed].join('\n')));
  assert.is(r.entries, 3000);
  same(file('# only comments\n\n#\n'));
  same(file(''));
});

test('unreadable paths are io errors at line 0', () => {
  const missing = same(path.join(dir, 'missing.jsonl'));
  assert.equal(missing.error, { line: 0, message: `cannot read ${path.join(dir, 'missing.jsonl')}: no such file`, kind: 'io' });
  assert.equal(same(dir).error?.message, `cannot read ${dir}: is a directory`);
});

test('a replay that stops early, far ahead of the worker, stops the worker too', () => {
  const lines = genLines('vm-churn', 10_000, 9);
  // Line 101 uses a variable nobody bound: resolution (in this thread) stops the replay.
  const unbound = [...lines.slice(0, 100), '{"op": "IOMMU_IOAS_ALLOC", "fd": "$never"}', ...lines.slice(100)];
  const r = same(file(unbound.join('\n') + '\n'));
  assert.equal([r.entries, r.error?.line, r.error?.field], [99, 101, 'fd']);
  // The model throws: an internal error at its line.
  let n = 0;
  const p = file(lines.slice(0, 5000).join('\n'));
  const throwing: ReplayOptions = {
    step: (w, i) => {
      if (++n === 2500) throw new Error('model bug');
      return step(w, i);
    },
  };
  n = 0;
  const a = replayLines(p, nodeIo().readLines(p), throwing);
  n = 0;
  const b = replaySource(p, new PipedSource(p), throwing);
  assert.equal(said(b), said(a));
  assert.equal([b.error?.kind, b.error?.line], ['internal', 2501]);
});

test('a worker that shows no sign of life ends the replay with an internal error instead of a hang', () => {
  // A FIFO nobody writes to: the worker blocks opening it and its heartbeat stands still.
  const fifo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pipe-stall-')), 'trace.fifo');
  execFileSync('mkfifo', [fifo]);
  try {
    const r = replaySource(fifo, new PipedSource(fifo, 300), {});
    assert.is(r.error?.kind, 'internal');
    assert.match(r.error?.message ?? '', /no sign of life/);
  } finally {
    // Let the worker's open() return (it reads an empty file and ends).
    fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
  }
});

/** The CLI over real files, output collected; `pipe` decides how entries are read. */
function cli(argv: string[], pipe: boolean): { code: number; out: string; err: string } {
  let t = 0;
  const io: Io = {
    ...nodeIo(),
    stdout: new StringOut(),
    stderr: new StringOut(),
    isTTY: { stdout: false, stderr: true },
    now: () => (t += 40),
    entrySource: (p) => (pipe ? new PipedSource(p) : null),
  };
  const code = run(argv, io);
  return { code, out: (io.stdout as StringOut).text, err: (io.stderr as StringOut).text };
}

test('the CLI prints the same with and without the worker: timeline, --quiet, --json, --invariants, progress, errors', () => {
  const lines = genLines('vm-churn', 25_000, 4);
  const big = file(lines.join('\n') + '\n');
  const diverging = file(lines.slice(0, 3000).map((l, i) => (i % 301 === 7 ? l.replace('"ok":true', '"errno":"EPERM"') : l)).join('\n') + '\n');
  const broken = file([...lines.slice(0, 2000), '{"op": "IOMMU_IOAS_MAP", "nope": 1}'].join('\n') + '\n');
  const { good } = fixtureFiles();
  const runs = [
    ['replay', '--check', diverging, broken, good[0]!],
    ['replay', '--check', '--json', '--state', diverging, broken, path.join(dir, 'missing.jsonl')],
    ['replay', '--quiet', '--invariants', '--faults', '--check', good[1]!, good[2]!],
    ['replay', '--json', '--quiet', big],
  ];
  let last = { code: 0, out: '', err: '' };
  for (const argv of runs) {
    const a = cli(argv, false);
    last = cli(argv, true);
    assert.equal(last, a, argv.join(' '));
    assert.ok(a.code !== 3, argv.join(' '));
  }
  assert.match(last.err, /\[#+-*\] +\d+% [\d,]+\/25,000 entries/, 'the progress bar was drawn');
});

test('a worker started early serves the first PipedSource of its file, and only that one', () => {
  const lines = genLines('vm-churn', 6000, 9);
  const p = file(lines.join('\n') + '\n');
  const other = file(lines.slice(0, 500).join('\n') + '\n');
  startEarly(['replay', '--check', '-q', p, other], { IOMMUFD_SIM_PIPE: '1' });
  // Workers are numbered in the order they start: the early one has the lowest number.
  const a = workerFor(other);
  const b = workerFor(p);
  const c = workerFor(p);
  assert.ok(b.worker.threadId < a.worker.threadId && a.worker.threadId < c.worker.threadId);
  for (const s of [a, b, c]) void s.worker.terminate();
  startEarly(['replay', p], { IOMMUFD_SIM_PIPE: '1' });
  same(p);
  startEarly(['gen', p], { IOMMUFD_SIM_PIPE: '1' });
  startEarly(['replay', p], { IOMMUFD_SIM_PIPE: '0' });
  const d = workerFor(p);
  const e = workerFor(p);
  assert.ok(d.worker.threadId < e.worker.threadId, 'no early worker without a replay to pipe');
  for (const s of [d, e]) void s.worker.terminate();
});

test('an early worker nobody takes does not keep the CLI from exiting', () => {
  const p = file(genLines('vm-churn', 20_000, 2).join('\n') + '\n');
  const main = new URL('../cli/main.js', import.meta.url).pathname;
  const t = performance.now();
  let status = 0;
  try {
    execFileSync(process.execPath, [main, 'replay', '--no-such-flag', p], { env: { ...process.env, IOMMUFD_SIM_PIPE: '1' }, stdio: 'pipe', timeout: 20_000 });
  } catch (e) {
    status = (e as { status: number }).status;
  }
  assert.is(status, 2, 'a usage error');
  assert.ok(performance.now() - t < 10_000);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();

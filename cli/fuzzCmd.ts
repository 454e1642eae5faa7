/*
 * fuzzCmd.ts: `iommufd-sim fuzz`: state-driven random traces checked against the
 * isolation invariants (properties/). Prints a progress line on stderr, a coverage
 * report (what was and was not reached), and on failure the path of the shrunk
 * counterexample, a trace that `replay --check` reproduces (exit 1).
 */
import { ERRNO, FAULT_KINDS, OP_NAMES } from '../events/index.js';
import { fuzz, type Coverage, type FuzzProgress } from '../properties/index.js';
import { BUG_NAMES, isBugName, type BugName } from '../core/bugs.js';
import { BUILTIN_PLATFORMS } from '../core/index.js';
import { UsageError, intFlag, strFlag, type Parsed } from './args.js';
import { EXIT, type Command } from './command.js';
import type { Io } from './io.js';

/** "60s", "2m", "1500ms" or a number of seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new UsageError(`--time: "${s}" is not a duration (e.g. 60s, 2m, 500ms)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export function coverageReport(c: Coverage) {
  const missing = (all: readonly string[], seen: Record<string, number>) => all.filter((k) => !(k in seen));
  return {
    ops: { reached: Object.keys(c.ops).length, of: OP_NAMES.length, missing: missing(OP_NAMES, c.ops), counts: c.ops },
    errnos: { reached: Object.keys(c.errnos).length, of: Object.keys(ERRNO).length, missing: missing(Object.keys(ERRNO), c.errnos), counts: c.errnos },
    faults: { reached: Object.keys(c.faults).length, of: FAULT_KINDS.length, missing: missing(FAULT_KINDS, c.faults), counts: c.faults },
  };
}

function progressLine(p: FuzzProgress): string {
  const c = p.coverage;
  return `runs ${p.runs}  events ${p.events}  ${Math.round(p.eventsPerSec).toLocaleString('en-US')} events/s  ` +
    `ops ${Object.keys(c.ops).length}/${OP_NAMES.length}  errnos ${Object.keys(c.errnos).length}  faults ${Object.keys(c.faults).join(',') || '-'}`;
}

function run(args: Parsed, io: Io): number {
  if (args.positional.length) throw new UsageError('fuzz takes no FILE arguments');
  const seed = intFlag(args, 'seed', 1, 0xffffffff);
  const platform = strFlag(args, 'platform', 'x86-vtd');
  if (!BUILTIN_PLATFORMS[platform]) throw new UsageError(`--platform: unknown platform "${platform}" (built-ins: ${Object.keys(BUILTIN_PLATFORMS).join(', ')})`);
  const out = strFlag(args, 'out', 'fuzz-out');
  const json = args.flags.json === true;
  const hasTime = typeof args.flags.time === 'string';
  if (hasTime && typeof args.flags.runs === 'string') throw new UsageError('give --runs or --time, not both');
  const timeMs = hasTime ? parseDuration(args.flags.time as string) : undefined;
  const runs = hasTime ? undefined : intFlag(args, 'runs', 1000);
  const events = intFlag(args, 'events', 100, 100_000);
  const bugs: BugName[] = [];
  if (typeof args.flags.bug === 'string')
    for (const b of args.flags.bug.split(',')) {
      if (!isBugName(b)) throw new UsageError(`--bug: unknown bug "${b}" (known: ${BUG_NAMES.join(', ')})`);
      bugs.push(b);
    }
  let last = -Infinity;
  const r = fuzz({
    seed, platform, outDir: out, maxEvents: events,
    ...(runs !== undefined ? { runs } : {}),
    ...(timeMs !== undefined ? { timeMs } : {}),
    ...(bugs.length ? { bugs } : {}),
    onProgress: (p) => {
      if (json || !io.isTTY.stderr) return;
      const now = io.now();
      if (now - last < 250) return;
      last = now;
      io.stderr.write(`\r\x1b[2K${progressLine(p)}`);
    },
  });
  if (!json && io.isTTY.stderr) io.stderr.write('\r\x1b[2K');
  const cov = coverageReport(r.coverage);
  const f = r.failure;
  if (json) {
    io.stdout.write(JSON.stringify({
      seed, platform, runs: r.runs, events: r.events, eventsPerSec: Math.round(r.eventsPerSec), coverage: cov,
      failure: f ? { invariant: f.invariant, message: f.message, file: f.file, length: f.length, foundAtRun: f.foundAtRun, originalLength: f.originalLength, shrinkMs: Math.round(f.shrinkMs) } : null,
    }) + '\n');
  } else {
    io.stdout.write(progressLine(r) + '\n');
    io.stdout.write(`coverage: ops ${cov.ops.reached}/${cov.ops.of}, errnos ${cov.errnos.reached}/${cov.errnos.of}, faults ${cov.faults.reached}/${cov.faults.of}\n`);
    if (cov.ops.missing.length) io.stdout.write(`  ops not reached: ${cov.ops.missing.join(' ')}\n`);
    if (cov.errnos.missing.length) io.stdout.write(`  errnos not reached: ${cov.errnos.missing.join(' ')}\n`);
    if (cov.faults.missing.length) io.stdout.write(`  faults not reached: ${cov.faults.missing.join(' ')}\n`);
    if (f)
      io.stdout.write(`FAIL ${f.invariant}: ${f.message}\n  found at run ${f.foundAtRun} (${f.originalLength} entries), shrunk to ${f.length} entries in ${Math.round(f.shrinkMs)} ms\n  counterexample: ${f.file}\n  reproduce: iommufd-sim replay --check ${f.file}\n`);
    else io.stdout.write('no invariant violated\n');
  }
  return f ? EXIT.FAIL : EXIT.OK;
}

export const fuzzCommand: Command = {
  name: 'fuzz',
  usage: 'fuzz [--seed N] [--runs N | --time 60s] [--platform P] [--out DIR] [--events N] [--bug NAME[,NAME]] [--json]',
  summary: 'random traces against the isolation invariants; failures shrink to a fixture',
  details: [
    'Generates traces from the current model state (existing devices, fds, IDs, IOVAs near areas, group-mates, racing closes; a share of deliberately wrong requests), checks every isolation invariant after every entry (incrementally), and on a violation shrinks the run to a 1-minimal trace written atomically to DIR (default fuzz-out/) as a fixture that `replay --check` reproduces without a seed.',
    'A progress line (runs, events/s, coverage) goes to stderr on a terminal; the end reports which ops, errnos and fault kinds were and were not reached. Exit 1 when an invariant failed, with the counterexample path.',
    `--bug switches on deliberately broken model variants (${BUG_NAMES.join(', ')}) to see the fuzzer find them.`,
  ].join('\n\n'),
  flags: [
    { name: 'seed', short: 's', value: 'N', doc: 'campaign seed (default 1); same seed and --runs give the same campaign' },
    { name: 'runs', short: 'n', value: 'N', doc: 'number of runs (default 1000)' },
    { name: 'time', short: 't', value: 'D', doc: 'run for a duration instead (60s, 2m, 500ms)' },
    { name: 'platform', short: 'p', value: 'P', doc: 'built-in platform (default x86-vtd)' },
    { name: 'out', short: 'o', value: 'DIR', doc: 'where a counterexample is written (default fuzz-out)' },
    { name: 'events', value: 'N', doc: 'entries per run at most (default 100)' },
    { name: 'bug', value: 'NAMES', doc: 'switch on planted model bugs (comma-separated)' },
    { name: 'json', doc: 'one JSON object on stdout' },
  ],
  run,
};

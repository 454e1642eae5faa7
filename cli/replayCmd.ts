/*
 * replayCmd.ts: `iommufd-sim replay [--check] [--json] [--quiet] FILE...`.
 * Each file is replayed on its own (a trace error stops that file only); the exit
 * status is the worst over all files.
 */
import { UsageError, type Parsed } from './args.js';
import { EXIT, worst, type Command } from './command.js';
import { COLOR, PLAIN, divergenceLine, errorMessage, errorText, summaryLine, timelineLine } from './format.js';
import type { Io } from './io.js';
import { Progress } from './progress.js';
import { LinesSource, replaySource, type EntryEvent, type FileReport } from './replay.js';
import { selectFaults, selectSummary, type World } from '../core/index.js';
import { checkAfter } from '../properties/index.js';
import { isBugName, withBugs } from '../core/bugs.js';
import type { TraceHeader } from '../events/index.js';

/** A fuzz counterexample names the planted bugs it was found with in meta.bugs. */
function bugsOfHeader(w: World, h: TraceHeader): World {
  const bugs = (h.meta as { bugs?: unknown } | null)?.bugs;
  if (!Array.isArray(bugs) || bugs.length === 0) return w;
  return withBugs(w, bugs.filter((b): b is Parameters<typeof withBugs>[1][number] => typeof b === 'string' && isBugName(b)));
}

/** Files smaller than this are never worth a progress bar (saves the counting pass). */
const PROGRESS_MIN_BYTES = 512 * 1024;
/** Entries above which a progress bar is shown (on a TTY stderr). */
export const PROGRESS_MIN_ENTRIES = 20_000;

/** The --json object of one file. */
export function jsonReport(r: FileReport): Record<string, unknown> {
  return {
    file: r.file,
    entries: r.entries,
    divergences: r.divergences.map((d) => ({ line: d.line, op: d.op, expected: d.expected, actual: d.actual })),
    error: r.error === null ? null : { line: r.error.line, message: errorText(r.error) },
    counts: r.counts,
    stateHash: r.stateHash,
  };
}

/**
 * The lines of a file, opened lazily so that an unreadable file is reported by the replay
 * as an io error (an object, not a generator around readLines: no cost per line).
 */
function linesOf(io: Io, file: string): Iterable<string> {
  return { [Symbol.iterator]: () => io.readLines(file)[Symbol.iterator]() };
}

function exitOf(r: FileReport, check: boolean): number {
  if (r.error?.kind === 'internal') return EXIT.INTERNAL;
  if (r.error) return EXIT.USAGE;
  return check && r.divergences.length > 0 ? EXIT.FAIL : EXIT.OK;
}

function run(args: Parsed, io: Io): number {
  const files = args.positional;
  if (files.length === 0) throw new UsageError('replay needs at least one trace FILE');
  const json = args.flags.json === true;
  const quiet = args.flags.quiet === true;
  const check = args.flags.check === true;
  const faults = args.flags.faults === true;
  const invariants = args.flags.invariants === true;
  const withState = args.flags.state === true;
  const states = new Map<number, Record<string, unknown>>();
  const style = !json && io.isTTY.stdout && io.env.NO_COLOR === undefined ? COLOR : PLAIN;
  const out = io.stdout;
  let code: number = EXIT.OK;

  for (const path of files) {
    const file = path === '-' ? '<stdin>' : path;
    // A progress bar only when it cannot garble the timeline (stdout is not the same terminal, or prints little).
    let progress: Progress | null = null;
    if (io.isTTY.stderr && (json || quiet || !io.isTTY.stdout)) {
      const size = io.fileSize(path);
      if (size !== null && size >= PROGRESS_MIN_BYTES) {
        const total = io.countEntries(path);
        if (total !== null && total > PROGRESS_MIN_ENTRIES) progress = new Progress(io, file, total);
      }
    }
    let onEntry: ((ev: EntryEvent) => void) | undefined;
    const stateLines = (ev: EntryEvent) => {
      if (ev.divergence && withState) out.write(JSON.stringify(selectSummary(ev.world), null, 1).replace(/\n\s*/g, ' ').replace(/^/, '    state: ') + '\n');
    };
    if (json) onEntry = withState ? (ev) => { if (ev.divergence) states.set(ev.divergence.line, selectSummary(ev.world)); } : undefined;
    else if (quiet)
      onEntry = (ev) => {
        if (ev.divergence) out.write(divergenceLine(ev.divergence, style, true) + '\n');
        stateLines(ev);
      };
    else
      onEntry = (ev) => {
        out.write(timelineLine(ev, style) + '\n');
        if (ev.divergence) out.write(divergenceLine(ev.divergence, style, false) + '\n');
        stateLines(ev);
      };
    const source = io.entrySource?.(path) ?? new LinesSource(linesOf(io, path));
    // In place: the observers above read each World at once and keep none of it.
    const report = replaySource(file, source, {
      inPlace: true,
      ...(onEntry ? { onEntry } : {}),
      ...(!json && !quiet
        ? {
            onHeader: (h) => {
              const title = typeof h.meta === 'object' && h.meta !== null && typeof (h.meta as { title?: unknown }).title === 'string' ? ` "${(h.meta as { title: string }).title}"` : '';
              const platform = typeof h.platform === 'string' ? h.platform : `inline ${JSON.stringify((h.platform as { name?: unknown }).name ?? 'platform')}`;
              out.write(style.bold(`${file}: trace v${h.version}, platform ${platform}${title}`) + '\n');
            },
          }
        : {}),
      ...(progress ? { onProgress: (n: number) => progress!.update(n), progressEvery: 256 } : {}),
      ...(invariants ? { invariants: checkAfter, start: bugsOfHeader } : {}),
    });
    if (!json) for (const v of report.violations) out.write(style.bold(`  line ${v.line} ${v.op}: INVARIANT ${v.invariant}: ${v.message}`) + '\n');
    progress?.end();
    const faultLog = faults && report.world ? selectFaults(report.world) : null;
    let base = invariants ? { ...jsonReport(report), violations: report.violations } : jsonReport(report);
    if (withState) base = { ...base, divergences: (base.divergences as { line: number }[]).map((d) => ({ ...d, state: states.get(d.line) ?? null })) };
    states.clear();
    if (json) out.write(JSON.stringify(faultLog ? { ...base, faults: faultLog.map((f) => ({ ...f, iova: `0x${f.iova.toString(16)}` })) } : base) + '\n');
    else {
      if (faultLog) {
        out.write(`${file}: IOMMU fault log (${faultLog.length})\n`);
        for (const f of faultLog) out.write(`  ${f.unit} #${f.seq} ${f.dev} ${f.dir} 0x${f.iova.toString(16)}: ${f.fault}: ${f.reason}\n`);
      }
      out.write(summaryLine(report, style) + '\n');
    }
    if (report.error) {
      out.flush();
      io.stderr.write(errorMessage(file, report.error) + '\n');
      io.stderr.flush();
    }
    code = worst(code, exitOf(report, check));
    if (check && report.violations.length) code = worst(code, EXIT.FAIL);
  }
  return code;
}

export const replayCommand: Command = {
  name: 'replay',
  usage: 'replay [--check] [--json] [--quiet] FILE...',
  summary: 'replay traces through the model, showing every outcome and any divergence from expect',
  details: [
    'Replays each FILE (JSON Lines, trace format v1; "-" reads standard input) through the model and prints a',
    'timeline: one line per entry (line number, pid when not 1, op and the fields given, outcome), a DIVERGENCE',
    'line under every entry whose outcome differs from its expect, and a summary per file (entries, ok/errno/',
    'fault/pending counts, divergences, final state hash). Colours only when stdout is a terminal (NO_COLOR',
    'turns them off).',
    '',
    'A trace error (malformed JSON, unknown op or field, unbound variable, value that does not fit its field,',
    'unknown platform or version) stops that file with FILE:LINE: field: message on stderr; the other files',
    'are still replayed. After a divergence, variables the expect would have bound take the actual outputs,',
    'so the replay goes on.',
    '',
    'Exit status: 0 ok; 1 a divergence and --check; 2 a trace error, unreadable file or usage error;',
    '3 internal error (the model threw: a bug of the model). The worst over all files wins.',
  ].join('\n'),
  flags: [
    { name: 'check', doc: 'exit 1 when any entry diverges from its expect' },
    { name: 'json', doc: 'one JSON object per file on stdout instead of the timeline (see cli/README.md)' },
    { name: 'quiet', short: 'q', doc: 'no timeline: only divergences and the summary' },
    { name: 'state', doc: 'at each divergence, also print a summary of the model state (devices, groups, iommufd objects, processes)' },
    { name: 'invariants', doc: 'check the isolation invariants after every entry (violations fail --check); applies meta.bugs of fuzz counterexamples' },
    { name: 'faults', doc: "print each IOMMU unit's fault log at the end of each file (with --json: a \"faults\" array)" },
  ],
  run,
};

/*
 * replay.ts: the replay engine, free of any output format. It streams a trace's
 * lines: comments and blanks are skipped (but counted), the first other line is the
 * header, every later one is parsed, resolved against the variable bindings,
 * stepped through the model, and matched against its `expect`. Observers see each
 * entry; the result is a FileReport.
 *
 * The loop is a plain synchronous loop. Nothing is kept per entry except the
 * divergences, so a million-line trace replays in constant memory (plus the World).
 */
import {
  expectOf, isSkippable, isTraceError, isVarRef, matchExpect, parseHeaderLine,
  type Bindings, type Entry, type Input, type Outcome, type TraceHeader,
} from '../events/index.js';
import { parseEntryLine, printExpect, resolveEntry, type TraceError } from '../events/index.js';
import { inPlaceStep, initialWorld, resolvePlatform, stateHash, step, type World } from '../core/index.js';

export interface Counts {
  ok: number;
  errno: number;
  fault: number;
  pending: number;
}

export interface Divergence {
  readonly line: number;
  readonly op: string;
  readonly pid: number;
  /** The entry's expect, as written (trace syntax). */
  readonly expected: unknown;
  /** The actual outcome in expect syntax, plus its reason. */
  readonly actual: Record<string, unknown>;
  /** What differed, in words. */
  readonly detail: string;
}

export interface ReplayError {
  readonly line: number;
  /** The field the error is about (trace errors), when known. */
  readonly field?: string;
  readonly message: string;
  /** 'trace': the input is wrong; 'io': the file could not be read (both exit 2); 'internal': the model threw (exit 3). */
  readonly kind: 'trace' | 'io' | 'internal';
}

export interface FileReport {
  readonly file: string;
  header: TraceHeader | null;
  entries: number;
  readonly counts: Counts;
  readonly divergences: Divergence[];
  error: ReplayError | null;
  /** stateHash of the World after the last replayed entry (null when the header failed). */
  stateHash: string | null;
  /** The World after the last replayed entry (for --faults and later inspection). */
  world: World | null;
  /** Invariant violations found by `opts.invariants` (replay --invariants). */
  readonly violations: { line: number; op: string; invariant: string; message: string }[];
}

export interface EntryEvent {
  readonly entry: Entry;
  readonly input: Input;
  readonly outcome: Outcome;
  /** Set when the entry has an expect that the outcome does not match. */
  readonly divergence: Divergence | null;
  /** The World after this entry (with `inPlace`, valid only until the next entry). */
  readonly world: World;
}

export interface ReplayOptions {
  /**
   * true (default): compare every expect with the outcome (divergences are reported).
   * false: expects only bind variables, nothing is compared (the bench's "no check").
   */
  readonly match?: boolean;
  /** Called after every entry (timeline printing). */
  readonly onEntry?: (ev: EntryEvent) => void;
  /** Called after the header was read. */
  readonly onHeader?: (h: TraceHeader) => void;
  /** Called every `progressEvery` entries with the number of entries done. */
  readonly onProgress?: (entriesDone: number) => void;
  readonly progressEvery?: number;
  /** Compute the final state hash (default true). */
  readonly hash?: boolean;
  /** Checks run after every step (replay --invariants): violations as {invariant, message}. */
  readonly invariants?: (prev: World, next: World, input: Input) => readonly { invariant: string; message: string }[];
  /** Adjusts the starting World from the header (replay --invariants applies meta.bugs). */
  readonly start?: (w: World, h: TraceHeader) => World;
  /** The model's step function (tests inject a failing one); default core's step. */
  readonly step?: (w: World, i: Input) => { world: World; outcome: Outcome };
  /**
   * Step the World in place (core's inPlaceStep): faster, but a World handed to
   * `onEntry` is written by the next entry, so observers must read it at once and not
   * keep it. Ignored with `invariants` (they compare the World before and after) or
   * `step`.
   */
  readonly inPlace?: boolean;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Binds the variables of an expect that are still unbound to the actual outputs (no comparison). */
function bindOnly(entry: Entry, outcome: Outcome, vars: Bindings): void {
  const ex = entry.expect;
  if (!ex || (ex.kind !== 'ok' && ex.kind !== 'errno') || (outcome.kind !== 'ok' && outcome.kind !== 'errno')) return;
  for (const k in ex.out) {
    const v = ex.out[k];
    if (isVarRef(v) && !vars.has(v.var)) {
      const actual = outcome.out[k];
      if (actual !== undefined) vars.set(v.var, actual);
    }
  }
}

/** The actual outcome in expect syntax, with the reason beside it. */
export function actualOf(o: Outcome): Record<string, unknown> {
  const e = expectOf(o);
  return o.kind === 'ok' ? (o.reason ? { ...e, reason: o.reason } : e) : { ...e, reason: o.reason };
}

/** The expect as written in the trace. */
export function writtenExpect(entry: Entry): unknown {
  return printExpect(entry.expect!);
}

/** Why a source stopped early: the input could not be read ('io'), or the codec threw ('internal'). */
export class SourceFailure {
  constructor(readonly kind: 'io' | 'internal', readonly message: string) {}
}

/**
 * Where a replay gets its trace from, already cut into lines and parsed. Comments and
 * blank lines are skipped but counted in `lineNo`. `next()` gives the header line's
 * text first, then each entry parsed (or the TraceError of its line), null after the
 * last line; a SourceFailure ends it. It never throws.
 */
export interface EntrySource {
  next(): string | Entry | TraceError | SourceFailure | null;
  /** The number of lines read so far (the line of what next() gave last). */
  readonly lineNo: number;
  /** Stops reading (the replay is over); idempotent. */
  close(): void;
}

/** An EntrySource reading and parsing lines in this thread. */
export class LinesSource implements EntrySource {
  lineNo = 0;
  private it: Iterator<string> | null = null;
  private headerSeen = false;

  constructor(private readonly lines: Iterable<string>) {}

  next(): string | Entry | TraceError | SourceFailure | null {
    for (;;) {
      let next: IteratorResult<string>;
      try {
        // A lazily opened file is opened by the first call.
        next = (this.it ??= this.lines[Symbol.iterator]()).next();
      } catch (e) {
        return new SourceFailure('io', message(e));
      }
      if (next.done === true) return null;
      const text = next.value;
      this.lineNo++;
      if (isSkippable(text)) continue;
      if (!this.headerSeen) {
        this.headerSeen = true;
        return text;
      }
      try {
        return parseEntryLine(text, this.lineNo);
      } catch (e) {
        return new SourceFailure('internal', message(e));
      }
    }
  }

  close(): void {
    const it = this.it;
    this.it = null;
    try {
      it?.return?.();
    } catch {
      // Closing a file that failed to read can fail again; the first failure was reported.
    }
  }
}

/** Replays one trace from its lines. Never throws: every failure ends up in the report. */
export function replayLines(file: string, lines: Iterable<string>, opts: ReplayOptions = {}): FileReport {
  return replaySource(file, new LinesSource(lines), opts);
}

/** Replays one trace from a source, and closes it. Never throws: every failure ends up in the report. */
export function replaySource(file: string, source: EntrySource, opts: ReplayOptions = {}): FileReport {
  const doMatch = opts.match !== false;
  const onEntry = opts.onEntry;
  const onProgress = opts.onProgress;
  const stepFn = opts.step ?? (opts.inPlace && !opts.invariants ? inPlaceStep() : step);
  const every = opts.progressEvery ?? 1024;
  const report: FileReport = {
    file, header: null, entries: 0, counts: { ok: 0, errno: 0, fault: 0, pending: 0 }, divergences: [], error: null, stateHash: null, world: null, violations: [],
  };
  const counts = report.counts;
  const vars: Bindings = new Map();
  let world: World | null = null;
  let lineNo = 0;
  let entries = 0;
  const fail = (line: number, msg: string, field: string | undefined, kind: ReplayError['kind']) => {
    report.error = field === undefined ? { line, message: msg, kind } : { line, field, message: msg, kind };
  };

  try {
    for (;;) {
      const item = source.next();
      lineNo = source.lineNo;
      if (item === null) break;
      if (typeof item === 'string') {
        const h = parseHeaderLine(item, lineNo);
        if (isTraceError(h)) {
          fail(lineNo, h.message, h.field, 'trace');
          break;
        }
        const p = resolvePlatform(h.platform);
        if (!p.ok) {
          fail(lineNo, p.message, p.field, 'trace');
          break;
        }
        try {
          world = initialWorld(p.platform);
          if (opts.start) world = opts.start(world, h);
        } catch (e) {
          // A platform whose devices cannot be set up is an input error of the header.
          fail(lineNo, message(e), 'platform.devices', 'trace');
          break;
        }
        report.header = h;
        opts.onHeader?.(h);
        continue;
      }
      if (item instanceof SourceFailure) {
        fail(lineNo, item.message, undefined, item.kind);
        break;
      }
      if (isTraceError(item)) {
        fail(lineNo, item.message, item.field, 'trace');
        break;
      }
      const entry = item;
      const input = resolveEntry(entry, vars);
      if (isTraceError(input)) {
        fail(lineNo, input.message, input.field, 'trace');
        break;
      }
      let outcome: Outcome;
      try {
        const prev = world!;
        const r = stepFn(prev, input);
        world = r.world;
        outcome = r.outcome;
        if (opts.invariants)
          for (const v of opts.invariants(prev, world, input))
            report.violations.push({ line: lineNo, op: entry.opWritten, invariant: v.invariant, message: v.message });
      } catch (e) {
        fail(lineNo, message(e), undefined, 'internal');
        break;
      }
      entries++;
      // By name: counts[outcome.kind]++ is a load and a store by a key that changes, dearer per entry.
      switch (outcome.kind) {
        case 'ok':
          counts.ok++;
          break;
        case 'errno':
          counts.errno++;
          break;
        case 'fault':
          counts.fault++;
          break;
        case 'pending':
          counts.pending++;
          break;
        default: {
          const never: never = outcome;
          throw new Error(`unknown outcome ${JSON.stringify(never)}`);
        }
      }
      let divergence: Divergence | null = null;
      if (entry.expect !== undefined) {
        if (doMatch) {
          const m = matchExpect(entry.expect, outcome, vars);
          if (m.diverged) {
            divergence = {
              line: lineNo, op: entry.opWritten, pid: input.pid, expected: writtenExpect(entry), actual: actualOf(outcome), detail: m.detail,
            };
            report.divergences.push(divergence);
            // Keep replaying usefully: variables the expect would have bound take the actual outputs.
            bindOnly(entry, outcome, vars);
          }
        } else bindOnly(entry, outcome, vars);
      }
      if (onEntry !== undefined) onEntry({ entry, input, outcome, divergence, world });
      if (onProgress !== undefined && entries % every === 0) onProgress(entries);
    }
  } catch (e) {
    // An observer or the codec threw: a bug of ours, not of the trace.
    fail(lineNo, message(e), undefined, 'internal');
  }
  source.close();
  report.entries = entries;
  report.world = world;
  if (world === null && report.error === null) fail(Math.max(1, lineNo), 'the trace has no header line (it is empty or all comments)', 'trace', 'trace');
  if (world !== null && opts.hash !== false) {
    try {
      report.stateHash = stateHash(world);
    } catch (e) {
      if (report.error === null) fail(lineNo, `stateHash: ${message(e)}`, undefined, 'internal');
    }
  }
  return report;
}

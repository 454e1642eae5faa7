/*
 * fuzz.ts: the model-based fuzzer. fast-check draws lists of choices; each choice
 * becomes one trace entry generated from the current state (arbitraries.ts) and is
 * stepped through core/, with the invariants (invariants.ts) as the oracle after
 * every step. A failure is shrunk twice: first by fast-check over the choices, then
 * by our own ddmin over the concrete trace entries (each candidate replayed from
 * scratch; candidates that no longer parse or resolve, e.g. an unbound variable, or
 * that fail another invariant, are dropped), until no single entry can be removed.
 * The result is written atomically (temp file + rename) as a trace-format fixture
 * whose `expect`s record the outcomes; it replays with `replayFixture`, without
 * fast-check.
 *
 * Clocks live here only for budgets and rates; the model itself stays pure.
 */
import fc from 'fast-check';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeOutcome, expectOf, isSkippable, isTraceError, matchExpect, parseEntry, parseEntryLine, parseHeaderLine, printEntry, printHeader,
  printOut, resolveEntry, type Bindings, type Outcome,
} from '../events/index.js';
import { initialWorld, resolvePlatform, step, type World } from '../core/index.js';
import { withBugs, isBugName, type BugName } from '../core/bugs.js';
import { checkAfter, checkAll, type InvariantName, type Violation } from './invariants.js';
import { choicesArb, nextTemplate, symKind, type Choice, type GenState, type Sym, type Template } from './arbitraries.js';

// ---------------------------------------------------------------- sessions

/** A replay in progress: the World, bound variables and their kinds. */
export class Session implements GenState {
  world: World;
  readonly vars: Bindings = new Map();
  readonly syms: Sym[] = [];
  n = 0;
  constructor(readonly start: World, readonly pidReuse = true) {
    this.world = start;
  }
}

export function startWorld(platform: string, bugs: readonly BugName[] = []): World {
  const p = resolvePlatform(platform);
  if (!p.ok) throw new Error(p.message);
  const w = initialWorld(p.platform);
  return bugs.length ? withBugs(w, bugs) : w;
}

export interface Applied {
  readonly outcome?: Outcome;
  readonly violation?: Violation;
  readonly traceError?: string;
}

/** Steps one template: parse, resolve, step (catching internal errors), bind outputs, check. */
export function applyTemplate(s: Session, t: Template, check: boolean, line = s.n + 2): Applied {
  s.n++;
  const e = parseEntry(t.raw as Record<string, unknown>, line);
  if (isTraceError(e)) return { traceError: e.message };
  const input = resolveEntry(e, s.vars);
  if (isTraceError(input)) return { traceError: input.message };
  const prev = s.world;
  let outcome: Outcome;
  try {
    const r = step(prev, input);
    s.world = r.world;
    outcome = r.outcome;
  } catch (err) {
    return { violation: { invariant: 'model-throws', message: `${e.op}: ${(err as Error).message}` } };
  }
  if (outcome.kind === 'ok')
    for (const [field, name] of Object.entries(t.binds)) {
      const val = outcome.out[field];
      const kind = symKind(e.op, field);
      if (val === undefined || kind === null) continue;
      s.vars.set(name, val);
      s.syms.push(kind === 'addr' ? { name, kind, len: BigInt(t.raw.length as string) } : { name, kind });
    }
  if (check) {
    let vs: Violation[];
    try {
      vs = checkAfter(prev, s.world, input);
    } catch (err) {
      vs = [{ invariant: 'model-throws', message: `invariant check after ${e.op}: ${(err as Error).message}` }];
    }
    if (vs.length) return { outcome, violation: vs[0]! };
  }
  return { outcome };
}

export interface Replayed {
  readonly outcomes: Outcome[];
  readonly violation?: Violation;
  /** Index of the entry after which the violation showed. */
  readonly at?: number;
  readonly traceError?: string;
}

/** Replays templates from a fresh World, stopping at the first violation. */
export function replayTemplates(start: World, ts: readonly Template[]): Replayed {
  const s = new Session(start);
  const outcomes: Outcome[] = [];
  for (const [i, t] of ts.entries()) {
    const r = applyTemplate(s, t, true, i + 2);
    if (r.traceError) return { outcomes, traceError: r.traceError };
    if (r.outcome) outcomes.push(r.outcome);
    if (r.violation) return { outcomes, violation: r.violation, at: i };
  }
  return { outcomes };
}

// ---------------------------------------------------------------- coverage

export interface Coverage {
  readonly ops: Record<string, number>;
  readonly errnos: Record<string, number>;
  readonly faults: Record<string, number>;
}
const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

interface GenRun {
  readonly templates: Template[];
  readonly violation?: Violation;
  readonly events: number;
}

function generate(start: World, choices: readonly Choice[], check: boolean, cov: Coverage | null, pidReuse = true): GenRun {
  const s = new Session(start, pidReuse);
  const templates: Template[] = [];
  for (const c of choices) {
    const t = nextTemplate(s, c);
    const r = applyTemplate(s, t, check);
    templates.push(t);
    if (cov) {
      bump(cov.ops, t.raw.op as string);
      if (r.outcome?.kind === 'errno') bump(cov.errnos, r.outcome.errno);
      if (r.outcome?.kind === 'fault') bump(cov.faults, r.outcome.fault);
    }
    if (r.traceError) throw new Error(`generator produced a bad entry ${JSON.stringify(t.raw)}: ${r.traceError}`);
    if (r.violation) return { templates, violation: r.violation, events: templates.length };
  }
  return { templates, events: templates.length };
}

// ---------------------------------------------------------------- ddmin

/** Zeller's ddmin: a subsequence on which `fails` still holds and from which no single item can go. */
export function ddmin<T>(items: readonly T[], fails: (xs: readonly T[]) => boolean): { items: T[]; tests: number } {
  let cur = [...items];
  let n = 2;
  let tests = 0;
  const test = (xs: T[]) => {
    tests++;
    return fails(xs);
  };
  while (cur.length >= 2) {
    const size = Math.ceil(cur.length / n);
    const chunks: T[][] = [];
    for (let i = 0; i < cur.length; i += size) chunks.push(cur.slice(i, i + size));
    let reduced = false;
    for (const c of chunks) {
      if (c.length < cur.length && test(c)) {
        cur = c;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced)
      for (let i = 0; i < chunks.length; i++) {
        const comp = chunks.filter((_, j) => j !== i).flat();
        if (comp.length < cur.length && test(comp)) {
          cur = comp;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return { items: cur, tests };
}

/** Shrinks a failing trace to a 1-minimal one failing the same invariant. */
export function shrinkTrace(start: World, ts: readonly Template[], invariant: InvariantName): { templates: Template[]; tests: number } {
  const fails = (xs: readonly Template[]) => {
    const r = replayTemplates(start, xs);
    return !r.traceError && r.violation?.invariant === invariant;
  };
  const r = ddmin(ts, fails);
  return { templates: r.items, tests: r.tests };
}

// ---------------------------------------------------------------- fixtures

function expectFor(t: Template, o: Outcome): Record<string, unknown> {
  if (o.kind !== 'ok') return expectOf(o);
  const e: Record<string, unknown> = { ok: true };
  for (const [k, val] of Object.entries(o.out)) e[k] = t.binds[k] ?? printOut(val);
  return e;
}

export interface FixtureMeta {
  readonly title: string;
  readonly invariant: InvariantName;
  readonly message: string;
  readonly bugs: readonly BugName[];
  readonly seed: number;
}

/** The fixture text: header, then every entry with its recorded outcome as `expect`. */
export function fixtureText(platform: string, start: World, ts: readonly Template[], meta: FixtureMeta): string {
  const r = replayTemplates(start, ts);
  if (r.traceError) throw new Error(`shrunk trace does not replay: ${r.traceError}`);
  const lines = [printHeader({ trace: 'iommufd', version: 1, platform, meta })];
  ts.forEach((t, i) => {
    const o = r.outcomes[i];
    const obj = o ? { ...t.raw, expect: expectFor(t, o) } : { ...t.raw };
    const e = parseEntry(obj as Record<string, unknown>, i + 2);
    if (isTraceError(e)) throw new Error(`fixture line ${i + 2}: ${e.message}`);
    lines.push(printEntry(e));
  });
  return lines.join('\n') + '\n';
}

/** Writes a file atomically: a temp file in the same directory, then rename. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export interface FixtureReplay {
  readonly entries: number;
  readonly divergences: string[];
  readonly violations: Violation[];
  readonly bugs: BugName[];
}

/** Replays a fixture file on its own (no fast-check): divergences from `expect` and invariant violations. */
export function replayFixture(path: string): FixtureReplay {
  const lines = readFileSync(path, 'utf8').split('\n');
  let header: ReturnType<typeof parseHeaderLine> | null = null;
  let world: World | null = null;
  const vars: Bindings = new Map();
  const divergences: string[] = [];
  const violations: Violation[] = [];
  let bugs: BugName[] = [];
  let entries = 0;
  for (const [i, text] of lines.entries()) {
    const line = i + 1;
    if (isSkippable(text)) continue;
    if (!header) {
      header = parseHeaderLine(text, line);
      if (isTraceError(header)) throw new Error(`${path}:${line}: ${header.message}`);
      const meta = (header.meta ?? {}) as { bugs?: unknown };
      bugs = Array.isArray(meta.bugs) ? meta.bugs.filter((b): b is BugName => typeof b === 'string' && isBugName(b)) : [];
      if (typeof header.platform !== 'string') throw new Error('fixtures use built-in platforms');
      world = startWorld(header.platform, bugs);
      continue;
    }
    const e = parseEntryLine(text, line);
    if (isTraceError(e)) throw new Error(`${path}:${line}: ${e.message}`);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(`${path}:${line}: ${input.message}`);
    entries++;
    const prev = world!;
    const r = step(prev, input);
    world = r.world;
    if (e.expect) {
      const m = matchExpect(e.expect, r.outcome, vars);
      if (m.diverged) divergences.push(`line ${line} ${e.op}: ${m.detail} (${describeOutcome(r.outcome)})`);
    }
    violations.push(...checkAfter(prev, world, input));
  }
  if (world) violations.push(...checkAll(world).filter((x) => !violations.some((y) => y.message === x.message)));
  return { entries, divergences, violations, bugs };
}

// ---------------------------------------------------------------- the fuzzer

export interface FuzzOptions {
  readonly seed?: number;
  /** Number of runs (deterministic for a seed); or a time budget. */
  readonly runs?: number;
  readonly timeMs?: number;
  readonly platform?: string;
  /** Where a counterexample fixture goes (default: none written). */
  readonly outDir?: string;
  readonly onProgress?: (p: FuzzProgress) => void;
  /** Model bugs to switch on (core/bugs.ts). */
  readonly bugs?: readonly BugName[];
  /** Entries per run: at most (default 100), at least (default 1). */
  readonly maxEvents?: number;
  readonly minEvents?: number;
  /** Check invariants (default true; false only to measure their cost). */
  readonly invariants?: boolean;
  /** Let processes whose pins outlive them exit (default true; false avoids it). */
  readonly pidReuse?: boolean;
  /** Budget for fast-check's shrinking, in property runs (default 200; ddmin does the fine work). */
  readonly maxShrinkRuns?: number;
}

export interface FuzzProgress {
  readonly runs: number;
  readonly events: number;
  readonly eventsPerSec: number;
  readonly coverage: Coverage;
}

export interface FuzzFailure {
  readonly invariant: InvariantName;
  readonly message: string;
  /** The fixture written (empty when no outDir). */
  readonly file: string;
  /** Entries of the shrunk trace. */
  readonly length: number;
  /** Run (1-based) that found it, entries of that run, entries after fast-check's shrink. */
  readonly foundAtRun: number;
  readonly originalLength: number;
  readonly fcShrunkLength: number;
  /** Wall time of both shrinking stages, and the ddmin replays. */
  readonly shrinkMs: number;
  readonly ddminTests: number;
  readonly text: string;
}

export interface FuzzResult {
  readonly runs: number;
  readonly events: number;
  readonly eventsPerSec: number;
  readonly coverage: Coverage;
  readonly failure?: FuzzFailure;
}

export function fuzz(o: FuzzOptions = {}): FuzzResult {
  const seed = o.seed ?? 1;
  const platform = o.platform ?? 'x86-vtd';
  const bugs = o.bugs ?? [];
  const check = o.invariants !== false;
  const start = startWorld(platform, bugs);
  const cov: Coverage = { ops: {}, errnos: {}, faults: {} };
  const maxShrinkRuns = o.maxShrinkRuns ?? 200;
  let runs = 0, events = 0, shrinkRuns = 0;
  let failedAt = 0, firstLen = 0, failT0 = 0;
  let found: Violation | null = null;
  const t0 = performance.now();
  const rate = () => events / Math.max(1e-3, (performance.now() - t0) / 1000);
  const progress = () => o.onProgress?.({ runs, events, eventsPerSec: rate(), coverage: cov });

  const prop = fc.property(choicesArb(o.maxEvents ?? 100, o.minEvents ?? 1), (choices) => {
    if (found) {
      // Shrinking: same invariant only, within budget.
      if (++shrinkRuns > maxShrinkRuns) return true;
      const r = generate(start, choices, check, null, o.pidReuse);
      return !(r.violation && r.violation.invariant === found.invariant);
    }
    runs++;
    const r = generate(start, choices, check, cov, o.pidReuse);
    events += r.events;
    if (runs % 200 === 0) progress();
    if (r.violation) {
      found = r.violation;
      failedAt = runs;
      firstLen = r.events;
      failT0 = performance.now();
      return false;
    }
    return true;
  });

  let result: fc.RunDetails<[Choice[]]> | null = null;
  if (o.timeMs !== undefined && o.runs === undefined) {
    for (let b = 0; performance.now() - t0 < o.timeMs; b++) {
      result = fc.check(prop, { seed: seed + b, numRuns: 100 });
      progress();
      if (result.failed) break;
    }
  } else {
    result = fc.check(prop, { seed, numRuns: o.runs ?? 100 });
  }
  const elapsed = performance.now() - t0;
  const base = { runs, events, eventsPerSec: events / Math.max(1e-3, (elapsed - (found ? performance.now() - failT0 : 0)) / 1000), coverage: cov };
  progress();
  if (!found || !result || !result.failed || !result.counterexample) return base;
  const v0 = found as Violation;
  const choices = result.counterexample[0];
  const g = generate(start, choices, check, null, o.pidReuse);
  if (!g.violation) throw new Error('counterexample did not reproduce');
  const shr = shrinkTrace(start, g.templates, g.violation.invariant);
  const final = replayTemplates(start, shr.templates);
  const violation = final.violation ?? g.violation;
  const shrinkMs = performance.now() - failT0;
  const meta: FixtureMeta = {
    title: `fuzz counterexample: ${violation.invariant}`, invariant: violation.invariant, message: violation.message, bugs: [...bugs], seed,
  };
  const text = fixtureText(platform, start, shr.templates, meta);
  let file = '';
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    file = join(o.outDir, `fuzz-${bugs.length ? bugs.join('+') + '-' : ''}${violation.invariant}-seed${seed}.jsonl`);
    writeAtomic(file, text);
  }
  void v0;
  return {
    ...base,
    failure: {
      invariant: violation.invariant, message: violation.message, file, length: shr.templates.length, foundAtRun: failedAt,
      originalLength: firstLen, fcShrunkLength: g.templates.length, shrinkMs, ddminTests: shr.tests, text,
    },
  };
}

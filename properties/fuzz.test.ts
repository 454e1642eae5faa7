// The fuzzer: ddmin is 1-minimal, each planted bug (core/bugs.ts) is found within a
// fixed seeded budget and shrunk to a handful of entries, the fixture it writes replays
// on its own, and the unbroken model survives seeded runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSkippable, isTraceError, parseEntryLine, parseHeaderLine, resolveEntry, type Bindings } from '../events/index.js';
import { step, type World } from '../core/index.js';
import { BUG_NAMES, type BugName } from '../core/bugs.js';
import { ddmin, fuzz, replayFixture, startWorld } from './fuzz.js';
import { TRANSITION_INVARIANTS, checkAfter, checkAll, type Violation } from './invariants.js';

const EXAMPLES = new URL('../../properties/counterexamples/', import.meta.url).pathname;

test('ddmin returns a 1-minimal failing subsequence', () => {
  const items = Array.from({ length: 40 }, (_, i) => i);
  const fails = (xs: readonly number[]) => xs.includes(3) && xs.includes(17) && xs.includes(31);
  const r = ddmin(items, fails);
  assert.equal(r.items, [3, 17, 31]);
  for (let i = 0; i < r.items.length; i++) assert.not.ok(fails(r.items.filter((_, j) => j !== i)));
});

// Budget per variant (seed 1): runs allowed and the longest acceptable shrunk trace.
const BUDGET: Record<BugName, { runs: number; maxLength: number }> = {
  'unmap-no-flush': { runs: 1000, maxLength: 12 },
  'claim-one-device': { runs: 200, maxLength: 8 },
  'probe-ignores-ownership': { runs: 300, maxLength: 8 },
  'copy-pins-twice': { runs: 50, maxLength: 10 },
  'attach-mate-other-hwpt': { runs: 1000, maxLength: 20 },
};

test('each planted bug is found within its budget, shrunk, and written as a replayable fixture', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iommufd-fuzz-'));
  try {
    for (const bug of BUG_NAMES) {
      const b = BUDGET[bug];
      const r = fuzz({ seed: 1, runs: b.runs, bugs: [bug], outDir: dir });
      assert.ok(r.failure, `${bug}: not found in ${b.runs} runs`);
      const f = r.failure!;
      assert.ok(f.length <= b.maxLength, `${bug}: shrunk to ${f.length} entries`);
      assert.equal(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);
      const rep = replayFixture(f.file);
      assert.equal(rep.divergences, [], bug);
      assert.equal(rep.bugs, [bug]);
      assert.is(rep.entries, f.length);
      assert.ok(rep.violations.some((v) => v.invariant === f.invariant), `${bug}: fixture does not reproduce ${f.invariant}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the unbroken model survives seeded runs', () => {
  for (const seed of [1, 2, 3]) {
    const r = fuzz({ seed, runs: 300 });
    assert.is(r.failure, undefined, r.failure && `${r.failure.invariant}: ${r.failure.message}\n${r.failure.text}`);
    assert.is(r.runs, 300);
    assert.ok(Object.keys(r.coverage.ops).length >= 20);
    assert.ok(r.coverage.faults.not_present! > 0 && r.coverage.faults.blocked! > 0);
  }
});

test('the same seed gives the same run', () => {
  const a = fuzz({ seed: 7, runs: 30 });
  const b = fuzz({ seed: 7, runs: 30 });
  assert.equal(a.coverage, b.coverage);
  assert.is(a.events, b.events);
});

/** Steps a fixture, comparing the incremental check with full checks at every step. */
function compareIncremental(path: string): Violation[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const vars: Bindings = new Map();
  let world: World | null = null;
  const key = (v: Violation) => `${v.invariant}: ${v.message}`;
  let before: string[] = [];
  const found: Violation[] = [];
  for (const [i, text] of lines.entries()) {
    if (isSkippable(text)) continue;
    if (!world) {
      const h = parseHeaderLine(text, i + 1);
      if (isTraceError(h)) throw new Error(h.message);
      world = startWorld(h.platform as string, ((h.meta as { bugs?: BugName[] }).bugs ?? []));
      continue;
    }
    const e = parseEntryLine(text, i + 1);
    if (isTraceError(e)) throw new Error(e.message);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(input.message);
    const prev: World = world;
    const r = step(prev, input);
    world = r.world;
    if (r.outcome.kind === 'ok' && e.expect?.kind === 'ok')
      for (const [k, v] of Object.entries(e.expect.out)) if (typeof v === 'object' && v && 'var' in v) vars.set((v as { var: string }).var, r.outcome.out[k]!);
    const all = checkAfter(prev, world, input);
    found.push(...all);
    const inc = [...new Set(all.filter((v) => !TRANSITION_INVARIANTS.includes(v.invariant)).map(key))].sort();
    const full = checkAll(world).map(key).sort();
    const fresh = full.filter((x) => !before.includes(x));
    assert.equal(fresh.filter((x) => !inc.includes(x)), [], `${path} line ${i + 1}: missed incrementally`);
    assert.equal(inc.filter((x) => !full.includes(x)), [], `${path} line ${i + 1}: only incremental`);
    before = full;
  }
  return found;
}

test('stored counterexamples reproduce, and the incremental check sees what the full one sees', () => {
  const files = readdirSync(EXAMPLES).filter((n) => n.endsWith('.jsonl'));
  assert.ok(files.length >= 5);
  for (const n of files) {
    const path = join(EXAMPLES, n);
    const meta = JSON.parse(readFileSync(path, 'utf8').split('\n')[0]!).meta as { invariant: string };
    const rep = replayFixture(path);
    assert.equal(rep.divergences, [], n);
    assert.ok(compareIncremental(path).some((v) => v.invariant === meta.invariant), `${n}: ${meta.invariant} not seen`);
  }
});

// Model bugs the fuzzer found, fixed since: each must now replay with no violation.
const REGRESSIONS = new URL('../../properties/regressions/', import.meta.url).pathname;

test('regressions: fixed model bugs stay fixed (no invariant violation, no divergence)', () => {
  const files = readdirSync(REGRESSIONS).filter((n) => n.endsWith('.jsonl'));
  assert.ok(files.length >= 1);
  for (const n of files) {
    const path = join(REGRESSIONS, n);
    assert.equal(replayFixture(path).divergences, [], n);
    assert.equal(compareIncremental(path), [], n);
  }
});

test.run();

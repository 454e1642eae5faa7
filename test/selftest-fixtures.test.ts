// Replays every fixtures/selftest/*.jsonl (kernel selftests ported to traces) in-process
// and fails on any divergence from the `expect` of an entry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeOutcome, expectOf, isSkippable, isTraceError, matchExpect, parseEntryLine, parseHeaderLine, resolveEntry,
  type Bindings,
} from '../events/index.js';
import { initialWorld, resolvePlatform, step } from '../core/index.js';

const DIR = join(process.cwd(), 'fixtures', 'selftest');

export function replayFile(path: string): { divergences: string[]; entries: number; unchecked: number } {
  const lines = readFileSync(path, 'utf8').split('\n');
  const divergences: string[] = [];
  let world: ReturnType<typeof initialWorld> | null = null;
  const vars: Bindings = new Map();
  let entries = 0, unchecked = 0;
  lines.forEach((text, idx) => {
    const line = idx + 1;
    if (isSkippable(text)) return;
    if (!world) {
      const h = parseHeaderLine(text, line);
      if (isTraceError(h)) throw new Error(`${path}:${line}: ${h.message}`);
      const p = resolvePlatform(h.platform);
      if (!p.ok) throw new Error(`${path}:${line}: ${p.message}`);
      world = initialWorld(p.platform);
      return;
    }
    const e = parseEntryLine(text, line);
    if (isTraceError(e)) throw new Error(`${path}:${line}: ${e.message}`);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(`${path}:${line}: ${input.message}`);
    const r = step(world, input);
    world = r.world;
    entries++;
    if (!e.expect) {
      unchecked++;
      return;
    }
    const m = matchExpect(e.expect, r.outcome, vars);
    if (m.diverged) divergences.push(`${path}:${line} ${e.op}: ${m.detail} (got ${JSON.stringify(expectOf(r.outcome))}: ${describeOutcome(r.outcome)})`);
  });
  return { divergences, entries, unchecked };
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.jsonl')).sort();

test('there are ported selftests', () => {
  assert.ok(files.length >= 15, `only ${files.length} fixtures`);
});

for (const f of files) {
  test(`selftest fixture ${f} replays without divergence`, () => {
    const r = replayFile(join(DIR, f));
    assert.equal(r.divergences, []);
    assert.ok(r.entries > 0);
    assert.is(r.unchecked, 0, 'every entry carries an expect');
  });
}

test.run();

/*
 * persistence.test.ts: old Worlds stay valid. Time travel keeps every state a replay
 * passed through, so no step may change a structure an earlier World can reach. Each
 * World's stateHash is taken when it is made and again after the whole replay: equal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isSkippable, isTraceError, matchExpect, parseEntryLine, parseHeaderLine, resolveEntry, type Bindings } from '../events/index.js';
import { initialWorld, resolvePlatform, stateHash, step, type World } from '../core/index.js';
import { generate } from '../cli/gen/index.js';

function worldsOf(lines: readonly string[], hashes: string[]): World[] {
  const out: World[] = [];
  const vars: Bindings = new Map();
  let w: World | null = null;
  lines.forEach((l, i) => {
    if (isSkippable(l)) return;
    if (!w) {
      const h = parseHeaderLine(l, i + 1);
      if (isTraceError(h)) throw new Error(h.message);
      const p = resolvePlatform(h.platform);
      if (!p.ok) throw new Error(p.message);
      w = initialWorld(p.platform);
      out.push(w);
      hashes.push(stateHash(w));
      return;
    }
    const e = parseEntryLine(l, i + 1);
    if (isTraceError(e)) throw new Error(e.message);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(input.message);
    const r = step(w, input);
    if (e.expect) matchExpect(e.expect, r.outcome, vars);
    w = r.world;
    out.push(w);
    hashes.push(stateHash(w));
  });
  return out;
}

function checkTrace(name: string, lines: readonly string[]) {
  // Hash each World as it is made, then all of them again after the whole replay.
  const early: string[] = [];
  const worlds = worldsOf(lines, early);
  assert.ok(new Set(early).size > worlds.length / 3, `${name}: states change`);
  assert.equal(worlds.map((w) => stateHash(w)), early, name);
}

const fixture = (p: string) => readFileSync(fileURLToPath(new URL(`../../fixtures/${p}`, import.meta.url)), 'utf8').split('\n');

test('every World of a replay is unchanged by the steps after it (story, isolation, selftest)', () => {
  for (const p of ['story/001-passthrough-story.jsonl', 'isolation/001-two-vms-same-iova.jsonl', 'isolation/002-group-lifecycle.jsonl', 'selftest/040-dirty-tracking-get-dirty-bitmap-640k.jsonl'])
    checkTrace(p, fixture(p));
});

test('every World of generated basic and vm-churn traces is unchanged by later steps', () => {
  for (const wl of ['basic', 'vm-churn']) {
    const lines: string[] = [];
    generate(wl, { entries: 600, seed: 3, platform: 'x86-vtd' }, (l) => lines.push(l));
    checkTrace(wl, lines);
  }
});

test.run();

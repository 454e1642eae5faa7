/*
 * workingCopy.test.ts: the immer-free MAP/UNMAP path (core/workingCopy.ts) against the
 * immer path it replaces. Every good fixture and generated traces are stepped by both
 * from the same World at every MAP and UNMAP: same outcome, same state hash. The fresh copies
 * the path makes are frozen, so a write it forgot to copy throws.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSkippable, isTraceError, matchExpect, parseEntryLine, parseHeaderLine, resolveEntry, type Bindings } from '../events/index.js';
import { initialWorld, resolvePlatform, stateHash, type World } from '../core/index.js';
import { makeStep } from '../core/step.js';
import { SHALLOW_OPS, TABLE } from '../core/table.js';
import { COPIERS } from '../core/workingCopy.js';
import { generate } from '../cli/gen/index.js';

const viaCopy = makeStep(TABLE, SHALLOW_OPS, COPIERS);
const viaImmer = makeStep(TABLE, SHALLOW_OPS);

/** Steps `lines` with both steps; returns how many entries took the working-copy path. */
function compare(name: string, lines: readonly string[]): number {
  const vars: Bindings = new Map();
  let w: World | null = null;
  let copied = 0;
  lines.forEach((l, i) => {
    if (isSkippable(l)) return;
    if (!w) {
      const h = parseHeaderLine(l, i + 1);
      if (isTraceError(h)) throw new Error(h.message);
      const p = resolvePlatform(h.platform);
      if (!p.ok) throw new Error(p.message);
      w = initialWorld(p.platform);
      return;
    }
    const e = parseEntryLine(l, i + 1);
    if (isTraceError(e)) throw new Error(e.message);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) return; // a trace that stops here (bad fixtures are not replayed)
    const a = viaCopy(w, input);
    if (COPIERS[input.op]) {
      // Other ops run the same code either way.
      const b = viaImmer(w, input);
      const where = `${name}:${i + 1} ${input.op}`;
      assert.equal(a.outcome, b.outcome, where);
      assert.is(stateHash(a.world), stateHash(b.world), where);
      assert.is(a.world === w, b.world === w, `${where}: unchanged World`);
      if (COPIERS[input.op]!(w, input)) {
        copied++;
        if (a.world !== w) assert.ok(Object.isFrozen(a.world) && Object.isFrozen(a.world.ctxs), `${where}: sealed`);
      }
    }
    if (e.expect) matchExpect(e.expect, a.outcome, vars);
    w = a.world;
  });
  return copied;
}

const root = fileURLToPath(new URL('../../fixtures/', import.meta.url));
function traces(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...traces(p));
    else if (name.endsWith('.jsonl')) out.push(p);
  }
  return out;
}

test('MAP/UNMAP on a working copy: same outcomes and Worlds as immer, every good fixture', () => {
  let copied = 0;
  for (const p of traces(root).filter((x) => !x.includes('/bad/') && !x.includes('/pending/')))
    copied += compare(p, readFileSync(p, 'utf8').split('\n'));
  assert.ok(copied > 20, `${copied} entries took the working-copy path`);
});

test('MAP/UNMAP on a working copy: same outcomes and Worlds as immer, generated traces', () => {
  for (const wl of ['basic', 'vm-churn']) {
    const lines: string[] = [];
    generate(wl, { entries: 1000, seed: 5, platform: 'x86-vtd' }, (l) => lines.push(l));
    const n = compare(wl, lines);
    // basic has no MAP/UNMAP: it only checks the other ops are untouched.
    if (wl === 'vm-churn') assert.ok(n > 300, `${wl}: the working-copy path is taken (${n} entries)`);
  }
});

test('a write the working copy did not copy throws', () => {
  const lines: string[] = [];
  generate('vm-churn', { entries: 300, seed: 5, platform: 'x86-vtd' }, (l) => lines.push(l));
  let w: World | null = null;
  const vars: Bindings = new Map();
  let checked = false;
  for (const [i, l] of lines.entries()) {
    if (isSkippable(l)) continue;
    if (!w) {
      const h = parseHeaderLine(l, i + 1);
      if (isTraceError(h)) throw new Error(h.message);
      const p = resolvePlatform(h.platform);
      if (!p.ok) throw new Error(p.message);
      w = initialWorld(p.platform);
      continue;
    }
    const e = parseEntryLine(l, i + 1);
    if (isTraceError(e)) throw new Error(e.message);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(input.message);
    const r = viaCopy(w, input);
    if (e.expect) matchExpect(e.expect, r.outcome, vars);
    if (input.op === 'IOMMU_IOAS_MAP' && r.outcome.kind === 'ok' && COPIERS[input.op]?.(w, input)) {
      const next = r.world as unknown as { ctxs: Record<number, { nextPages: number }> };
      const ctx = Object.values(next.ctxs)[0]!;
      assert.throws(() => { ctx.nextPages = -1; });
      assert.throws(() => { (next as unknown as { mem: null }).mem = null; });
      checked = true;
      break;
    }
    w = r.world;
  }
  assert.ok(checked, 'a MAP took the working-copy path');
});

test.run();

/*
 * workingCopy.test.ts: the immer-free MAP/UNMAP path (core/workingCopy.ts) against the
 * immer path it replaces. Every good fixture and generated traces are stepped by both
 * from the same World at every MAP and UNMAP: same outcome, same state hash. The fresh copies
 * the path makes are frozen, so a write it forgot to copy throws.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stateHash } from '../core/index.js';
import { makeStep } from '../core/step.js';
import { SHALLOW_OPS, TABLE } from '../core/table.js';
import { COPIERS } from '../core/workingCopy.js';
import { replayLines } from '../cli/replay.js';
import { fixtureFiles, genLines, readLines } from './kit.js';

const viaCopy = makeStep(TABLE, SHALLOW_OPS, COPIERS);
const viaImmer = makeStep(TABLE, SHALLOW_OPS);

/** Replays `lines` through the working-copy step, checking each MAP/UNMAP against immer; returns how many took the copy path. */
function compare(name: string, lines: readonly string[]): number {
  let copied = 0;
  const r = replayLines(name, lines, {
    step: (w, input) => {
      const a = viaCopy(w, input);
      const copier = COPIERS[input.op];
      if (copier) {
        // Other ops run the same code either way.
        const b = viaImmer(w, input);
        const where = `${name} ${input.op}`;
        assert.equal(a.outcome, b.outcome, where);
        assert.is(stateHash(a.world), stateHash(b.world), where);
        assert.is(a.world === w, b.world === w, `${where}: unchanged World`);
        if (copier(w, input)) {
          copied++;
          if (a.world !== w) assert.ok(Object.isFrozen(a.world) && Object.isFrozen(a.world.ctxs), `${where}: sealed`);
        }
      }
      return a;
    },
  });
  assert.is(r.error, null, name);
  return copied;
}

test('MAP/UNMAP on a working copy: same outcomes and Worlds as immer, every good fixture', () => {
  let copied = 0;
  for (const p of fixtureFiles().good) copied += compare(p, readLines(p));
  assert.ok(copied > 20, `${copied} entries took the working-copy path`);
});

test('MAP/UNMAP on a working copy: same outcomes and Worlds as immer, generated traces', () => {
  for (const wl of ['basic', 'vm-churn']) {
    const n = compare(wl, genLines(wl, 1000, 5));
    // basic has no MAP/UNMAP: it only checks the other ops are untouched.
    if (wl === 'vm-churn') assert.ok(n > 300, `${wl}: the working-copy path is taken (${n} entries)`);
  }
});

test('a write the working copy did not copy throws', () => {
  let checked = false;
  replayLines('vm-churn', genLines('vm-churn', 300, 5), {
    step: (w, input) => {
      const r = viaCopy(w, input);
      if (!checked && input.op === 'IOMMU_IOAS_MAP' && r.outcome.kind === 'ok' && COPIERS[input.op]?.(w, input)) {
        const next = r.world as unknown as { ctxs: Record<number, { nextPages: number }> };
        const ctx = Object.values(next.ctxs)[0]!;
        assert.throws(() => { ctx.nextPages = -1; });
        assert.throws(() => { (next as unknown as { mem: null }).mem = null; });
        checked = true;
      }
      return r;
    },
  });
  assert.ok(checked, 'a MAP took the working-copy path');
});

test.run();

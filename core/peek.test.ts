// core/peek.ts relies on immer's draft state (Symbol.for('immer-state'), base_/copy_):
// these tests fail if an immer upgrade changes it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { produce, isDraft } from 'immer';
import { peek } from './peek.js';
import { makeStep, type HandlerTable } from './step.js';
import type { Copier } from './workingCopy.js';
import type { Input } from '../events/index.js';
import type { World } from './world.js';

test('peek of a plain value is the value', () => {
  const o = { a: 1 };
  assert.is(peek(o), o);
  assert.is(peek(undefined), undefined);
  assert.is(peek(null), null);
});

test('peek sees writes made through the draft and drafts nothing', () => {
  const base = Object.freeze({ recs: Object.freeze({ 1: Object.freeze({ n: 1 }), 2: Object.freeze({ n: 2 }) }) as Record<number, { n: number }> });
  const next = produce(base, (d) => {
    assert.is(peek(d), base, 'unwritten draft: its base');
    assert.is(peek(peek(d).recs)[1], base.recs[1]);
    assert.not.ok(isDraft(peek(peek(d).recs)[1]));
    d.recs[2]!.n = 20;
    d.recs[3] = { n: 3 };
    delete d.recs[1];
    const cur = peek(peek(d).recs);
    assert.equal(Object.keys(cur), ['2', '3']);
    assert.is(peek(cur[2])!.n, 20);
    assert.is(cur[3]!.n, 3);
  });
  assert.equal(next, { recs: { 2: { n: 20 }, 3: { n: 3 } } });
  assert.equal(base, { recs: { 1: { n: 1 }, 2: { n: 2 } } });
});

test('peek is draft-aware again after a plain handler, even one that threw (a model bug)', () => {
  const seen: unknown[] = [];
  const marked = { [Symbol.for('immer-state')]: { base_: 'base', copy_: undefined } };
  const handler = () => {
    // On a plain World peek is the identity: it does not look at the draft-state symbol.
    seen.push(peek(marked));
    throw new Error('planted model bug');
  };
  const world = { mem: { pinLogEnd: () => 0 } } as unknown as World;
  const copier: Copier = (w) => ({ world: w, seal() {}, rollback() {} });
  const table = { dma: handler, IOMMU_IOAS_MAP: handler } as unknown as HandlerTable;
  const step = makeStep(table, new Set(['dma']), { IOMMU_IOAS_MAP: copier });
  for (const op of ['dma', 'IOMMU_IOAS_MAP']) {
    assert.throws(() => step(world, { op } as Input), /planted model bug/);
    assert.is(peek(marked), 'base', `after a throwing ${op} handler`);
  }
  assert.equal(seen, [marked, marked]);
});

test.run();

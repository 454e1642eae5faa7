// core/peek.ts relies on immer's draft state (Symbol.for('immer-state'), base_/copy_):
// these tests fail if an immer upgrade changes it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { produce, isDraft } from 'immer';
import { peek } from './peek.js';

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

test.run();

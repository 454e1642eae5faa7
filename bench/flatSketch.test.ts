/*
 * flatSketch.test.ts: the flat data-plane sketch (bench/flatSketch.ts) must keep doing
 * the model's work on vm-churn, or its figure means nothing: every DMA it translates
 * lands on the model's PA and VA, and faults where the model faults.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sketch } from './flatSketch.js';
import { genLines } from '../test/kit.js';

test('flat sketch: same DMA outcomes as the model on generated vm-churn traces', () => {
  for (const seed of [1, 2]) {
    const r = sketch(genLines('vm-churn', 4000, seed));
    assert.ok(r.checked > 300, `seed ${seed}: ${r.checked} DMAs checked`);
    assert.is(r.differ, 0, `seed ${seed}`);
  }
});

test.run();

// IOTLB internals against a plain reference: fills, range / domain / global
// invalidations and FIFO eviction of the oldest live fill, under heavy invalidation
// churn (the fill queue keeps invalidated entries until eviction skips them or a
// compaction drops them). Lookups, contents and eviction order must match the reference
// at every step, the queue must stay O(capacity), and old versions must not change.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lcg } from './testutil.js';
import { VTD_SL } from './format.js';
import { Iotlb, TlbEntry, emptyIotlb, tlbEntries, tlbFill, tlbInvalidate, tlbLookup } from './iotlb.js';

interface Ref {
  domain: number;
  depth: number;
  iovaBase: number;
  span: number;
}

const spans = VTD_SL.spans;
const view = (es: readonly (TlbEntry | Ref)[]): string[] =>
  es.map((e) => `${e.domain}/${e.iovaBase}/${e.depth}`).sort();

for (const capacity of [1, 4, 33, 100]) {
  test(`capacity ${capacity}: fills, invalidations and FIFO eviction match a reference`, () => {
    const rnd = lcg(capacity * 31 + 7);
    let tlb: Iotlb = emptyIotlb(capacity);
    let ref: Ref[] = []; // live entries, oldest fill first
    const history: [Iotlb, string[]][] = [];
    for (let step = 0; step < 6000; step++) {
      const op = rnd(10);
      const domain = 1 + rnd(3);
      if (op < 6) {
        const depth = rnd(4) === 0 ? 2 : 3;
        const span = spans[depth]!;
        const page = rnd(4096);
        const base = page - (page % span);
        if (tlbLookup(tlb, domain, page, spans) !== undefined) continue;
        if (ref.some((e) => e.domain === domain && e.depth === depth && e.iovaBase === base)) assert.unreachable('lookup missed a cached entry');
        tlb = tlbFill(tlb, domain, depth, base, span, base + 7, 3).tlb;
        if (ref.length >= capacity) ref = ref.slice(1);
        ref.push({ domain, depth, iovaBase: base, span });
      } else if (op < 9) {
        const start = rnd(4096);
        const end = start + 1 + rnd(op === 8 ? 2048 : 64);
        tlb = tlbInvalidate(tlb, { domain, start, end }, spans);
        ref = ref.filter((e) => e.domain !== domain || e.iovaBase + e.span <= start || e.iovaBase >= end);
      } else if (rnd(4) === 0) {
        tlb = tlbInvalidate(tlb, {}, spans);
        ref = [];
      } else {
        tlb = tlbInvalidate(tlb, { domain }, spans);
        ref = ref.filter((e) => e.domain !== domain);
      }
      assert.is(tlb.size, ref.length);
      const got = view(tlbEntries(tlb));
      const want = view(ref);
      if (got.join() !== want.join()) assert.equal(got, want, `step ${step}`);
      if (tlb.queue.length > 2 * capacity + 33) assert.unreachable(`queue grew to ${tlb.queue.length}`);
      if (step % 500 === 0) history.push([tlb, got]);
    }
    for (const [old, want] of history) assert.equal(view(tlbEntries(old)), want);
  });
}

test('eviction takes the oldest live fill, skipping invalidated ones', () => {
  let tlb = emptyIotlb(3);
  for (const base of [0, 1, 2]) tlb = tlbFill(tlb, 1, 3, base, 1, 100 + base, 3).tlb;
  tlb = tlbInvalidate(tlb, { domain: 1, start: 0, end: 1 }, spans);
  tlb = tlbFill(tlb, 1, 3, 5, 1, 105, 3).tlb; // room: no eviction
  tlb = tlbFill(tlb, 1, 3, 6, 1, 106, 3).tlb; // evicts 1 (0 is gone already)
  assert.equal(view(tlbEntries(tlb)), view([2, 5, 6].map((b) => ({ domain: 1, depth: 3, iovaBase: b, span: 1 }))));
  tlb = tlbFill(tlb, 1, 3, 0, 1, 100, 3).tlb; // refill of an invalidated key; evicts 2
  assert.equal(view(tlbEntries(tlb)), view([0, 5, 6].map((b) => ({ domain: 1, depth: 3, iovaBase: b, span: 1 }))));
  assert.is(tlbLookup(tlb, 1, 0, spans)!.pfn, 100);
});

test.run();

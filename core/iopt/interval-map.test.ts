import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IntervalMap } from './interval-map.js';
import { coverage, rng } from './testutil.js';
import { U64_LIMIT, U64_MAX } from './u64.js';

test('insert, find, get, remove', () => {
  const m = IntervalMap.empty<string>().insert(0x1000n, 0x1fffn, 'a').insert(0x3000n, 0x3fffn, 'b');
  assert.is(m.size, 2);
  assert.is(m.find(0x1000n)?.value, 'a');
  assert.is(m.find(0x1fffn)?.value, 'a');
  assert.is(m.find(0x2000n), undefined);
  assert.is(m.find(0xfffn), undefined);
  assert.is(m.get(0x3000n)?.last, 0x3fffn);
  assert.is(m.get(0x3001n), undefined);
  const m2 = m.remove(0x1000n);
  assert.is(m2.size, 1);
  assert.is(m2.find(0x1800n), undefined);
  assert.throws(() => m2.remove(0x1000n), /no interval/);
});

test('overlap is a caller bug; touching is fine', () => {
  const m = IntervalMap.empty<number>().insert(10n, 19n, 1);
  assert.throws(() => m.insert(19n, 25n, 2), /overlaps/);
  assert.throws(() => m.insert(0n, 10n, 2), /overlaps/);
  assert.throws(() => m.insert(12n, 13n, 2), /overlaps/);
  assert.throws(() => m.insert(0n, U64_MAX, 2), /overlaps/);
  const t = m.insert(20n, 29n, 2).insert(0n, 9n, 0);
  assert.is(t.size, 3);
  assert.throws(() => m.insert(5n, 4n, 0), RangeError);
  assert.throws(() => m.insert(0n, U64_LIMIT, 0), RangeError);
  assert.throws(() => m.insert(-1n, 3n, 0), RangeError);
});

test('edges at 2^64-1', () => {
  const top = U64_MAX - 0xfffn;
  const m = IntervalMap.empty<string>().insert(top, U64_MAX, 'top').insert(0n, 0n, 'zero');
  assert.is(m.find(U64_MAX)?.value, 'top');
  assert.is(m.find(0n)?.value, 'zero');
  assert.is(m.firstIntersecting(U64_MAX, U64_MAX)?.value, 'top');
  assert.ok(m.anyIntersects(1n, U64_MAX));
  assert.not.ok(m.anyIntersects(1n, top - 1n));
  assert.is(m.firstUncovered(top), U64_LIMIT);
  assert.is(m.firstUncovered(0n), 1n);
  assert.is(m.nextCovered(1n), top);
  assert.is(m.nextCovered(U64_MAX), U64_MAX);
  const all = IntervalMap.empty<number>().insert(0n, U64_MAX, 1);
  assert.is(all.firstUncovered(0n), U64_LIMIT);
  assert.is(all.find(U64_MAX)?.value, 1);
  assert.equal([...all.intersecting(5n, 6n)].length, 1);
  assert.is(all.remove(0n).size, 0);
});

test('intersecting iterates ascending, includes the straddler', () => {
  let m = IntervalMap.empty<number>();
  for (let i = 0; i < 10; i++) m = m.insert(BigInt(i * 10), BigInt(i * 10 + 4), i);
  assert.equal([...m.intersecting(15n, 39n)].map((e) => e.value), [2, 3]);
  assert.equal([...m.intersecting(14n, 40n)].map((e) => e.value), [1, 2, 3, 4]);
  assert.equal([...m.intersecting(5n, 9n)].map((e) => e.value), []);
  assert.is(m.firstIntersecting(5n, 9n), undefined);
  assert.is(m.firstIntersecting(5n, 10n)?.value, 1);
  assert.equal([...m].map((e) => e.value), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.is(m.first()?.value, 0);
});

test('update swaps only the value; persistence keeps old versions', () => {
  const v1 = IntervalMap.empty<string>().insert(100n, 199n, 'x').insert(300n, 399n, 'y');
  const v2 = v1.update(300n, 'y2');
  const v3 = v2.remove(100n);
  const v4 = v3.insert(0n, 50n, 'z');
  assert.equal([...v1].map((e) => e.value), ['x', 'y']);
  assert.equal([...v2].map((e) => e.value), ['x', 'y2']);
  assert.equal([...v3].map((e) => e.value), ['y2']);
  assert.equal([...v4].map((e) => e.value), ['z', 'y2']);
  assert.throws(() => v1.update(301n, 'q'), /no interval/);
  assert.is(IntervalMap.empty<number>().size, 0);
});

/**
 * Random inserts and removes against a brute-force oracle, every 100th version kept,
 * with all points offset by `base`: above 2^53 neighbouring points share one double, so
 * the tree's number shadows tie and the exact bigint comparisons decide (core/iopt/avl.ts).
 */
function oracle(base: bigint, seed: number): void {
  const N = 600;
  const rand = rng(seed);
  const B = (x: number): bigint => base + BigInt(x);
  let m = IntervalMap.empty<number>();
  const versions: { map: IntervalMap<number>; model: Map<number, number> }[] = [];
  let model = new Map<number, number>(); // start -> last
  for (let step = 0; step < 3000; step++) {
    if (rand(3) > 0) {
      const s = rand(N);
      const l = Math.min(N - 1, s + rand(8));
      const clash = [...model].some(([a, b]) => a <= l && s <= b);
      if (clash) {
        assert.throws(() => m.insert(B(s), B(l), s));
      } else {
        m = m.insert(B(s), B(l), s);
        model = new Map(model).set(s, l);
      }
    } else if (model.size > 0) {
      const keys = [...model.keys()];
      const s = keys[rand(keys.length)]!;
      m = m.remove(B(s));
      model = new Map(model);
      model.delete(s);
    }
    if (step % 100 === 0) versions.push({ map: m, model });
  }
  for (const { map, model: mo } of versions) {
    assert.is(map.selfCheck(), mo.size);
    const ranges = [...mo].map(([a, b]) => ({ start: B(a), last: B(b) }));
    const cov = coverage(ranges.map((r) => ({ start: r.start - base, last: r.last - base })), N);
    for (let p = 0; p < N; p++) {
      assert.is(map.find(B(p)) !== undefined, cov[p]);
      const fu = map.firstUncovered(B(p));
      let want = p;
      while (want < N && cov[want]) want++;
      assert.is(fu, B(want));
      let nc = p;
      while (nc < N && !cov[nc]) nc++;
      assert.is(map.nextCovered(B(p)), nc < N ? B(nc) : undefined);
    }
    for (let q = 0; q < 50; q++) {
      const a = rand(N);
      const b = Math.min(N - 1, a + rand(40));
      const want = ranges.filter((r) => r.start <= B(b) && r.last >= B(a)).sort((x, y) => (x.start < y.start ? -1 : 1));
      assert.equal([...map.intersecting(B(a), B(b))].map((e) => e.start), want.map((r) => r.start));
      assert.is(map.firstIntersecting(B(a), B(b))?.start, want[0]?.start);
    }
  }
}

test('randomized against a brute-force oracle, all versions kept', () => oracle(0n, 42));
test('the same above 2^53, where neighbouring points share a double', () => oracle(1n << 60n, 7));
test('the same at the top of the u64 range', () => oracle(U64_LIMIT - 600n, 9));

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReservedMap } from './reserved-map.js';
import { coverage, rng, runs } from './testutil.js';
import { U64_MAX } from './u64.js';

test('a fresh map has one hole covering all of u64', () => {
  const r = ReservedMap.empty();
  assert.equal(r.holes(), [{ start: 0n, last: U64_MAX }]);
  assert.is(r.intersects(0n, U64_MAX), undefined);
  assert.is(r.size, 0);
});

test('overlapping owners: holes are the complement of the union', () => {
  const r = ReservedMap.empty()
    .add('dev:0000:01:00.0', 0xfee00000n, 0xfeefffffn)
    .add('dev:0000:02:00.0', 0xfee00000n, 0xfeefffffn)
    .add('domain:3', 1n << 48n, U64_MAX)
    .add('test:1', 0xfe000000n, 0xfee7ffffn);
  assert.equal(r.holes(), [
    { start: 0n, last: 0xfdffffffn },
    { start: 0xfef00000n, last: (1n << 48n) - 1n },
  ]);
  const hit = r.intersects(0xfee10000n, 0xfee10000n);
  assert.is(hit?.owner, 'test:1');
  assert.is(r.intersects(0xfee80000n, 0xfee80000n)?.owner, 'dev:0000:01:00.0');
  assert.equal(
    r.allIntersecting(0xfee80000n, 0xfee80000n).map((x) => x.owner),
    ['dev:0000:01:00.0', 'dev:0000:02:00.0'],
  );
  r.selfCheck();
});

test('ranges at 0 and at the top; adjacency merges holes away', () => {
  const r = ReservedMap.empty().add('a', 0n, 0xfffn).add('b', 0x1000n, 0x1fffn).add('c', U64_MAX, U64_MAX);
  assert.equal(r.holes(), [{ start: 0x2000n, last: U64_MAX - 1n }]);
  const all = ReservedMap.empty().add('x', 0n, U64_MAX);
  assert.equal(all.holes(), []);
  assert.is(all.intersects(U64_MAX, U64_MAX)?.owner, 'x');
  const one = ReservedMap.empty().add('x', 5n, 5n);
  assert.equal(one.holes(), [
    { start: 0n, last: 4n },
    { start: 6n, last: U64_MAX },
  ]);
});

test('removeOwner removes all of its ranges, keeps others and old versions', () => {
  const v1 = ReservedMap.empty().add('dev:a', 100n, 199n).add('dev:b', 150n, 250n).add('dev:a', 400n, 499n);
  const v2 = v1.removeOwner('dev:a');
  assert.is(v1.size, 3);
  assert.is(v2.size, 1);
  assert.equal(v2.holes(), [
    { start: 0n, last: 149n },
    { start: 251n, last: U64_MAX },
  ]);
  assert.equal(v1.rangesOf('dev:a').map((x) => x.start), [100n, 400n]);
  assert.equal(v2.rangesOf('dev:a'), []);
  assert.not.ok(v2.hasOwner('dev:a'));
  assert.ok(v1.hasOwner('dev:a'));
  assert.is(v2.removeOwner('dev:zzz'), v2);
  const v3 = v2.removeOwner('dev:b');
  assert.equal(v3.holes(), [{ start: 0n, last: U64_MAX }]);
  assert.is(v1.intersects(420n, 420n)?.owner, 'dev:a');
  v1.selfCheck();
  v2.selfCheck();
  v3.selfCheck();
});

test('same owner may repeat a range; tie order is insertion order', () => {
  const r = ReservedMap.empty().add('o2', 10n, 20n).add('o1', 10n, 20n).add('o2', 10n, 20n);
  assert.is(r.size, 3);
  assert.is(r.intersects(15n, 15n)?.owner, 'o2');
  assert.equal([...r.entries()].map((x) => x.owner), ['o2', 'o1', 'o2']);
  const s = r.removeOwner('o2');
  assert.equal([...s.entries()].map((x) => x.owner), ['o1']);
  s.selfCheck();
  assert.throws(() => r.add('x', 3n, 2n), RangeError);
});

test('randomized: holes and intersects against brute force', () => {
  const N = 500;
  const rand = rng(7);
  const owners = ['dev:0', 'dev:1', 'dev:2', 'domain:1', 'domain:2', 'test:1'];
  let r = ReservedMap.empty();
  let model: { owner: string; start: bigint; last: bigint }[] = [];
  const versions: [ReservedMap, typeof model][] = [];
  for (let step = 0; step < 1500; step++) {
    const owner = owners[rand(owners.length)]!;
    if (rand(4) > 0) {
      const s = rand(N);
      const l = Math.min(N - 1, s + rand(30));
      r = r.add(owner, BigInt(s), BigInt(l));
      model = [...model, { owner, start: BigInt(s), last: BigInt(l) }];
    } else {
      r = r.removeOwner(owner);
      model = model.filter((x) => x.owner !== owner);
    }
    if (step % 50 === 0) versions.push([r, model]);
  }
  for (const [map, mo] of versions) {
    assert.is(map.selfCheck(), mo.length);
    const cov = coverage(mo, N);
    const want = runs(cov, false);
    // The oracle only sees [0, N); the last hole extends to the top.
    const lastHole = want[want.length - 1];
    if (lastHole !== undefined && lastHole.last === BigInt(N - 1)) want[want.length - 1] = { start: lastHole.start, last: U64_MAX };
    else want.push({ start: BigInt(N), last: U64_MAX });
    assert.equal(map.holes(), want);
    for (let q = 0; q < 40; q++) {
      const a = BigInt(rand(N));
      const b = a + BigInt(rand(20));
      const hits = mo
        .map((x, i) => ({ ...x, i }))
        .filter((x) => x.start <= b && x.last >= a)
        .sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : x.i - y.i));
      const got = map.intersects(a, b);
      assert.equal(got && { ...got }, hits[0] && { owner: hits[0].owner, start: hits[0].start, last: hits[0].last });
    }
  }
});

test.run();

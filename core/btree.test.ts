/*
 * btree.test.ts: BTree against a sorted-array model, operation by operation, for the
 * three comparison modes (number keys, bigint keys with cmpBig, small and past 2^53,
 * a custom comparator).
 * Every version (a tree and its clones, with/without results) keeps its own model, and
 * all of them are compared again after each run: a write to one must never show in
 * another (persistence).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BTree, cmpBig, emptyBig, type Comparator } from './btree.js';

type Model<K> = [K, number][];

interface Kind<K> {
  readonly name: string;
  readonly make: () => BTree<K, number>;
  readonly key: (n: number) => K;
  readonly cmp: Comparator<K>;
}

const cmpNum = (a: number, b: number): number => a - b;
const kinds: Kind<unknown>[] = [
  { name: 'number', make: () => new BTree<number, number>(), key: (n) => n, cmp: cmpNum },
  { name: 'bigint', make: () => emptyBig<number>(), key: (n) => BigInt(n) * 4096n, cmp: cmpBig },
  // Above 2^53 neighbouring keys round to one number: order settled on the bigints.
  { name: 'bigint past 2^64', make: () => emptyBig<number>(), key: (n) => (1n << 64n) + BigInt(n), cmp: cmpBig },
  // Descending order through a comparator: the generic path, and an order `<` would get wrong.
  { name: 'comparator', make: () => new BTree<number, number>(undefined, (a, b) => b - a), key: (n) => n, cmp: (a: number, b: number) => b - a },
] as Kind<unknown>[];

/** Index of the first model pair whose key is >= k (> k when strict). */
function at<K>(m: Model<K>, k: K, cmp: Comparator<K>, strict: boolean): number {
  let i = 0;
  while (i < m.length && (strict ? cmp(m[i]![0], k) <= 0 : cmp(m[i]![0], k) < 0)) i++;
  return i;
}

function modelSet<K>(m: Model<K>, k: K, v: number, cmp: Comparator<K>, overwrite: boolean): boolean {
  const i = at(m, k, cmp, false);
  if (i < m.length && cmp(m[i]![0], k) === 0) {
    if (overwrite) m[i] = [k, v];
    return false;
  }
  m.splice(i, 0, [k, v]);
  return true;
}

function modelDelete<K>(m: Model<K>, k: K, cmp: Comparator<K>): boolean {
  const i = at(m, k, cmp, false);
  if (i < m.length && cmp(m[i]![0], k) === 0) {
    m.splice(i, 1);
    return true;
  }
  return false;
}

/** Every query at key k (and a range from k) answers as the model does. */
function checkAt<K>(t: BTree<K, number>, m: Model<K>, k: K, span: K, cmp: Comparator<K>): void {
  const i = at(m, k, cmp, false);
  const j = at(m, k, cmp, true);
  assert.is(t.get(k), i < j ? m[i]![1] : undefined, 'get');
  assert.equal(t.getPairOrNextLower(k), j > 0 ? m[j - 1] : undefined, 'getPairOrNextLower');
  assert.is(t.valueOrNextLower(k), j > 0 ? m[j - 1]![1] : undefined, 'valueOrNextLower');
  assert.equal(t.nextHigherPair(k), j < m.length ? m[j] : undefined, 'nextHigherPair');
  const [lo, hi] = cmp(k, span) <= 0 ? [k, span] : [span, k];
  for (const incl of [false, true]) {
    const got: [K, number][] = [];
    const n = t.forRange(lo, hi, incl, (key, v, c) => {
      assert.is(c, got.length, 'forRange counter');
      got.push([key, v]);
    });
    const want = m.filter(([key]) => cmp(key, lo) >= 0 && (incl ? cmp(key, hi) <= 0 : cmp(key, hi) < 0));
    assert.equal(got, want, `forRange incl=${incl}`);
    assert.is(n, want.length);
  }
  assert.equal([...t.entries(k)], m.slice(i), 'entries(lowest)');
}

function checkAll<K>(t: BTree<K, number>, m: Model<K>): void {
  assert.is(t.size, m.length, 'size');
  assert.equal([...t.entries()], m, 'entries');
  assert.equal([...t.values()], m.map(([, v]) => v), 'values');
}

type Op =
  | { op: 'set'; v: number; k: number; overwrite: boolean }
  | { op: 'delete'; v: number; k: number }
  | { op: 'clone'; v: number }
  | { op: 'with'; v: number; k: number; overwrite: boolean | undefined }
  | { op: 'without'; v: number; k: number }
  | { op: 'query'; v: number; k: number; span: number }
  | { op: 'bulk'; v: number; from: number; n: number; step: number; del: boolean };

function opArb(keys: number): fc.Arbitrary<Op> {
  const v = fc.nat(1000);
  const k = fc.integer({ min: -2, max: keys + 2 });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), v, k, overwrite: fc.boolean() }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('delete' as const), v, k }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('clone' as const), v }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('with' as const), v, k, overwrite: fc.constantFrom(true, false, undefined) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('without' as const), v, k }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('query' as const), v, k, span: k }) },
    // Runs of inserts or deletes: splits, and underflows that merge or even out nodes.
    { weight: 1, arbitrary: fc.record({ op: fc.constant('bulk' as const), v, from: k, n: fc.integer({ min: 1, max: 400 }), step: fc.integer({ min: 1, max: 3 }), del: fc.boolean() }) },
  );
}

/** Runs ops over versions of one tree; each version is checked against its model. */
function run<K>(kind: Kind<K>, ops: readonly Op[], start: number): void {
  const { cmp, key } = kind;
  const versions: { t: BTree<K, number>; m: Model<K> }[] = [{ t: kind.make(), m: [] }];
  for (let n = 0; n < start; n++) {
    versions[0]!.t.set(key(n * 2), n);
    versions[0]!.m.push([key(n * 2), n]);
  }
  if (cmp(key(0), key(1)) > 0) versions[0]!.m.reverse();
  let stamp = 0;
  for (const o of ops) {
    const ver = versions[o.v % versions.length]!;
    const { t, m } = ver;
    stamp++;
    switch (o.op) {
      case 'set':
        assert.is(t.set(key(o.k), stamp, o.overwrite), modelSet(m, key(o.k), stamp, cmp, o.overwrite), 'set result');
        break;
      case 'delete':
        assert.is(t.delete(key(o.k)), modelDelete(m, key(o.k), cmp), 'delete result');
        break;
      case 'clone':
        versions.push({ t: t.clone(), m: m.slice() });
        break;
      case 'with': {
        // Like sorted-btree: without overwrite an existing key keeps its value, and the
        // result is the tree itself.
        const m2 = m.slice();
        const added = modelSet(m2, key(o.k), stamp, cmp, o.overwrite === true);
        const t2 = t.with(key(o.k), stamp, o.overwrite);
        assert.is(t2 === t, !added && !o.overwrite, 'with returns this');
        if (t2 !== t) versions.push({ t: t2, m: m2 });
        break;
      }
      case 'without': {
        const m2 = m.slice();
        modelDelete(m2, key(o.k), cmp);
        versions.push({ t: t.without(key(o.k)), m: m2 });
        break;
      }
      case 'query':
        checkAt(t, m, key(o.k), key(o.span), cmp);
        break;
      case 'bulk':
        for (let i = 0; i < o.n; i++) {
          const k = key(o.from + i * o.step);
          if (o.del) assert.is(t.delete(k), modelDelete(m, k, cmp));
          else assert.is(t.set(k, stamp, true), modelSet(m, k, stamp, cmp, true));
        }
        break;
    }
    const k = 'k' in o ? o.k : 'from' in o ? o.from : 0;
    checkAt(t, m, key(k), key(k + 40), cmp);
  }
  for (const { t, m } of versions) checkAll(t, m);
}

for (const kind of kinds) {
  test(`${kind.name} keys: random operations on a tree and its clones match the model`, () => {
    fc.assert(
      fc.property(fc.array(opArb(600), { maxLength: 120 }), (ops) => run(kind, ops, 0)),
      { numRuns: 150, seed: 42 },
    );
  });

  test(`${kind.name} keys: 5,000 keys (multi-level), clones written in turn, deletes that underflow`, () => {
    fc.assert(
      fc.property(fc.array(opArb(10_000), { minLength: 20, maxLength: 80 }), (ops) => run(kind, ops, 5000)),
      { numRuns: 15, seed: 7 },
    );
  });

  test(`${kind.name} keys: a dense run beside sparse nodes, cloned, then a run of deletes (nodes evened out from either side)`, () => {
    // Odd keys fill some nodes of the evens up; deleting next to them underflows nodes
    // whose siblings are too full to merge with, and those siblings are shared.
    fc.assert(
      fc.property(fc.nat(1000), fc.integer({ min: 1, max: 120 }), fc.nat(1000), fc.integer({ min: 1, max: 200 }), fc.boolean(), (a, la, b, lb, onClone) =>
        run(kind, [
          { op: 'bulk', v: 0, from: 2 * a + 1, n: la, step: 2, del: false },
          { op: 'clone', v: 0 },
          { op: 'bulk', v: onClone ? 1 : 0, from: 2 * b, n: lb, step: 1, del: true },
        ], 1000),
      ),
      { numRuns: 300, seed: 3 },
    );
  });
}

test('number keys: emptying a multi-level tree leaf by leaf, with a snapshot after every delete', () => {
  const t0 = new BTree<number, number>();
  for (let k = 0; k < 3000; k++) t0.set(k, k);
  const snaps: [BTree<number, number>, number][] = [];
  let t = t0;
  // Deletes from both ends and the middle, so merges happen on either side of a node.
  const order = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? i / 3 : i % 3 === 1 ? 2999 - (i - 1) / 3 : 1000 + (i - 2) / 3));
  const gone = new Set<number>();
  for (const k of order) {
    const next = t.clone();
    assert.ok(next.delete(k));
    gone.add(k);
    if (gone.size % 97 === 0) snaps.push([t, gone.size - 1]);
    t = next;
    if (gone.size % 250 === 0) assert.equal([...t.entries()].map(([key]) => key), Array.from({ length: 3000 }, (_, i) => i).filter((i) => !gone.has(i)));
  }
  assert.is(t.size, 0);
  assert.equal([...t.entries()], []);
  assert.is(t.getPairOrNextLower(5), undefined);
  assert.is(t.valueOrNextLower(5), undefined);
  assert.is(t.nextHigherPair(-1), undefined);
  assert.equal([...t0.entries()].length, 3000);
  for (const [s, deleted] of snaps) assert.is(s.size, 3000 - deleted);
});

test.run();

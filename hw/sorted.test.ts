// SortedList against a plain Map reference under a seeded operation sequence, plus persistence.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SortedList } from './sorted.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

interface KV {
  readonly key: number;
  readonly v: number;
}
const kv = (key: number, v: number): KV => ({ key, v });
const sortedRef = (ref: Map<number, number>): [number, number][] => [...ref].sort((a, b) => a[0] - b[0]);
const pairs = (m: SortedList<KV>): [number, number][] => [...m.values()].map((x) => [x.key, x.v]);

test('matches a Map reference through sets, deletes and range queries; old versions stay intact', () => {
  const rnd = lcg(11);
  let m = SortedList.empty<KV>();
  const ref = new Map<number, number>();
  const snapshots: [SortedList<KV>, [number, number][]][] = [];
  for (let i = 0; i < 20000; i++) {
    const k = rnd() % (i < 10000 ? 400 : 100); // grow past several chunks, then shrink
    const op = rnd() % 3;
    if (op === 2 || (i >= 10000 && op === 1)) {
      m = m.delete(k);
      ref.delete(k);
    } else {
      m = m.set(kv(k, i));
      ref.set(k, i);
    }
    assert.is(m.size, ref.size);
    assert.is(m.get(k)?.v, ref.get(k));
    if (i % 97 === 0) {
      const all = sortedRef(ref);
      assert.equal(pairs(m), all);
      const lo = rnd() % 420, hi = lo + (rnd() % 120);
      const got: [number, number][] = [];
      m.forRange(lo, hi, (x) => got.push([x.key, x.v]));
      assert.equal(got, all.filter(([key]) => key >= lo && key < hi));
      snapshots.push([m, all]);
    }
  }
  for (const [s, all] of snapshots) assert.equal(pairs(s), all);
});

test('deleteRange matches a Map reference, keeps old versions', () => {
  const rnd = lcg(23);
  let m = SortedList.empty<KV>();
  const ref = new Map<number, number>();
  const snapshots: [SortedList<KV>, [number, number][]][] = [];
  for (let i = 0; i < 4000; i++) {
    if (rnd() % 4 !== 0) {
      const k = rnd() % 2000;
      m = m.set(kv(k, i));
      ref.set(k, i);
      continue;
    }
    const lo = (rnd() % 2100) - 50;
    const hi = lo + (rnd() % 3 === 0 ? rnd() % 600 : rnd() % 20);
    const want = sortedRef(ref).filter(([key]) => key >= lo && key < hi);
    const next = m.deleteRange(lo, hi);
    if (want.length === 0) assert.is(next, m);
    for (const [key] of want) ref.delete(key);
    m = next;
    assert.is(m.size, ref.size);
    assert.equal(pairs(m), sortedRef(ref));
    if (i % 50 === 0) snapshots.push([m, sortedRef(ref)]);
  }
  assert.is(m.deleteRange(-Infinity, Infinity).size, 0);
  for (const [s, want] of snapshots) assert.equal(pairs(s), want);
});

test('delete of an absent key returns the same list', () => {
  const m = SortedList.empty<KV>().set(kv(5, 1)).set(kv(1, 2));
  assert.is(m.delete(3), m);
  assert.is(SortedList.empty<KV>().delete(3).size, 0);
  assert.equal(pairs(m), [[1, 2], [5, 1]]);
});

test.run();

// SortedMap against a plain Map reference under a seeded operation sequence, plus persistence.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SortedMap } from './sorted.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

const sortedRef = (ref: Map<number, number>): [number, number][] => [...ref].sort((a, b) => a[0] - b[0]);

test('matches a Map reference through sets, deletes and range queries; old versions stay intact', () => {
  const rnd = lcg(11);
  let m = SortedMap.empty<number>();
  const ref = new Map<number, number>();
  const snapshots: [SortedMap<number>, [number, number][]][] = [];
  for (let i = 0; i < 20000; i++) {
    const k = rnd() % (i < 10000 ? 400 : 100); // grow past several chunks, then shrink
    const op = rnd() % 3;
    if (op === 2 || (i >= 10000 && op === 1)) {
      m = m.delete(k);
      ref.delete(k);
    } else {
      m = m.set(k, i);
      ref.set(k, i);
    }
    assert.is(m.size, ref.size);
    assert.is(m.get(k), ref.get(k));
    // Deletions merge small chunks: the list never thins out to a few keys per chunk.
    assert.ok(m.chunks.length <= m.size / 4 + 2, `${m.chunks.length} chunks for ${m.size} keys`);
    if (i % 97 === 0) {
      const all = sortedRef(ref);
      assert.equal([...m.entries()], all);
      const lo = rnd() % 420, hi = lo + (rnd() % 120);
      const got: [number, number][] = [];
      m.forRange(lo, hi, (key, v) => got.push([key, v]));
      assert.equal(got, all.filter(([key]) => key >= lo && key < hi));
      snapshots.push([m, all]);
    }
  }
  for (const [s, all] of snapshots) assert.equal([...s.entries()], all);
});

test('deleteRange matches a Map reference, returns what it removed, keeps old versions', () => {
  const rnd = lcg(23);
  let m = SortedMap.empty<number>();
  const ref = new Map<number, number>();
  const snapshots: [SortedMap<number>, [number, number][]][] = [];
  for (let i = 0; i < 4000; i++) {
    if (rnd() % 4 !== 0) {
      const k = rnd() % 2000;
      m = m.set(k, i);
      ref.set(k, i);
      continue;
    }
    const lo = (rnd() % 2100) - 50;
    const hi = lo + (rnd() % 3 === 0 ? rnd() % 600 : rnd() % 20);
    const want = sortedRef(ref).filter(([key]) => key >= lo && key < hi);
    const removed: number[] = [];
    const next = m.deleteRange(lo, hi, removed);
    assert.equal(removed, want.map(([, v]) => v));
    if (want.length === 0) assert.is(next, m);
    for (const [key] of want) ref.delete(key);
    m = next;
    assert.is(m.size, ref.size);
    assert.ok(m.chunks.length <= m.size / 4 + 2, `${m.chunks.length} chunks for ${m.size} keys`);
    assert.equal([...m.entries()], sortedRef(ref));
    if (i % 50 === 0) snapshots.push([m, sortedRef(ref)]);
  }
  const all: number[] = [];
  assert.is(m.deleteRange(-Infinity, Infinity, all).size, 0);
  assert.is(all.length, ref.size);
  for (const [s, want] of snapshots) assert.equal([...s.entries()], want);
});

test('thinning out by deletes or range deletes merges chunks; contents stay exact', () => {
  for (const ranged of [false, true]) {
    let m = SortedMap.empty<number>();
    for (let k = 0; k < 1000; k++) m = m.set(k, k);
    const full = m;
    for (let k = 0; k < 1000; k += 8) {
      if (ranged) m = m.deleteRange(k + 1, k + 8);
      else for (let j = k + 1; j < k + 8; j++) m = m.delete(j);
    }
    assert.equal([...m.entries()].map(([k]) => k), Array.from({ length: 125 }, (_, i) => i * 8));
    assert.ok(m.chunks.length <= m.size / 4 + 2, `${m.chunks.length} chunks for ${m.size} keys`);
    assert.is(full.size, 1000);
    assert.equal([...full.entries()].length, 1000);
  }
});

test('delete of an absent key returns the same map', () => {
  const m = SortedMap.empty<string>().set(5, 'a').set(1, 'b');
  assert.is(m.delete(3), m);
  assert.is(SortedMap.empty<string>().delete(3).size, 0);
  assert.equal([...m.entries()], [[1, 'b'], [5, 'a']]);
});

test.run();

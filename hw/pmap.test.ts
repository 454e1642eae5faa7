// PMap against a plain Map reference under a seeded operation sequence, plus persistence.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PMap, hashKey } from './pmap.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

test('matches a Map reference through sets and deletes; old versions stay intact', () => {
  const rnd = lcg(7);
  let m = PMap.empty<number>();
  const ref = new Map<string, number>();
  const snapshots: [PMap<number>, Map<string, number>][] = [];
  for (let i = 0; i < 20000; i++) {
    const r = rnd();
    const useStr = r & 1;
    const k1: number | string = useStr ? `dev${r % 3000}` : (r % 3000) * 2 ** 30 + 5;
    const k2 = (r >>> 20) % 3;
    const key = `${typeof k1}:${k1}:${k2}`;
    if ((r >>> 8) % 3 === 0) {
      m = m.delete(k1, k2);
      ref.delete(key);
    } else {
      m = m.set2(k1, k2, i);
      ref.set(key, i);
    }
    if (i % 2500 === 0) snapshots.push([m, new Map(ref)]);
  }
  const check = (pm: PMap<number>, rm: Map<string, number>): void => {
    assert.is(pm.size, rm.size);
    let n = 0;
    for (const [k1, k2, v] of pm.entries()) {
      assert.is(rm.get(`${typeof k1}:${k1}:${k2}`), v);
      assert.is(pm.get(k1, k2), v);
      n++;
    }
    assert.is(n, rm.size);
  };
  check(m, ref);
  for (const [pm, rm] of snapshots) check(pm, rm);
});

test('no-op updates return the same map; deleting everything yields empty', () => {
  const a = PMap.empty<string>().set('x', 'v').set(3, 'w');
  assert.is(a.set('x', 'v'), a);
  assert.is(a.delete('nope'), a);
  const e = a.delete('x').delete(3);
  assert.is(e.size, 0);
  assert.is(e.get('x'), undefined);
  assert.is(a.get('x'), 'v');
});

test('full 32-bit hash collisions are kept apart', () => {
  // hashNumber mixes lo ^ hi * 0x9e3779b1, a bijection on lo alone: pick hi = 1 to collide.
  const a = 5;
  const b = 2 ** 32 + ((5 ^ 0x9e3779b1) >>> 0);
  assert.is(hashKey(a, 0), hashKey(b, 0));
  const m = PMap.empty<string>().set(a, 'a').set(b, 'b').set(a + 1, 'c');
  assert.equal([m.get(a), m.get(b), m.get(a + 1), m.size], ['a', 'b', 'c', 3]);
  const m2 = m.set(b, 'B').delete(a);
  assert.equal([m2.get(a), m2.get(b), m2.size], [undefined, 'B', 2]);
  assert.equal([m.get(a), m.get(b)], ['a', 'b']);
  assert.is(m2.delete(b).delete(a + 1).size, 0);
});

test.run();

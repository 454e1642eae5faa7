import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allocIova, IntervalMap, planUnmap, ReservedMap, U64_MAX } from './index.js';

const N = 200_000;
const P = 0x1000n;
// A permutation of 0..N-1 (N and 7919 are coprime), so inserts arrive unordered.
const slot = (i: number): bigint => BigInt((i * 7919) % N);

test('200,000 areas: insert, query, remove, and old versions intact', () => {
  let m = IntervalMap.empty<number>();
  for (let i = 0; i < N; i++) {
    const s = P + slot(i) * 2n * P; // one page mapped, one page gap
    m = m.insert(s, s + P - 1n, i);
  }
  const full = m;
  assert.is(full.size, N);
  assert.is(full.selfCheck(), N);
  for (let k = 0; k < N; k += 997) {
    const s = P + BigInt(k) * 2n * P;
    const e = full.find(s + 5n);
    assert.ok(e !== undefined && e.start === s);
    assert.is(full.find(s + P), undefined);
    assert.is(full.firstIntersecting(s + P, s + 2n * P - 1n), undefined);
    assert.is(full.firstIntersecting(s + P, s + 2n * P)?.start, s + 2n * P < P + BigInt(N) * 2n * P ? s + 2n * P : undefined);
  }
  let count = 0;
  for (const e of full.intersecting(P + 1000n * 2n * P + 7n, P + 2000n * 2n * P)) {
    assert.is(e.start, P + BigInt(1000 + count) * 2n * P);
    count++;
  }
  assert.is(count, 1001);
  // Remove the even slots.
  for (let k = 0; k < N; k += 2) m = m.remove(P + BigInt(k) * 2n * P);
  assert.is(m.size, N / 2);
  assert.is(m.selfCheck(), N / 2);
  assert.is(m.find(P), undefined);
  assert.is(m.find(P + 2n * P)?.start, P + 2n * P);
  // The old version is untouched.
  assert.is(full.size, N);
  assert.is(full.find(P)?.value, 0);
  assert.is(full.selfCheck(), N);
  const plan = planUnmap(m, 0n, U64_MAX);
  assert.is(plan.inside.length, N / 2);
  assert.is(plan.bytes, BigInt(N / 2) * P);
});

test('200,000 first-fit allocations pack back to back, then refill holes', () => {
  const reserved = ReservedMap.empty().add('dev:msi', 0x10000000n, 0x100fffffn);
  const allowed = IntervalMap.empty<unknown>();
  let areas = IntervalMap.empty<unknown>();
  const base = { reserved, allowed, length: P, addr: 0x7f0000000000n, iovaAlignment: P };
  for (let i = 0; i < N; i++) {
    const r = allocIova({ ...base, areas });
    assert.ok(r.ok);
    if (!r.ok) return;
    let want = P + BigInt(i) * P;
    if (want >= 0x10000000n) want += 0x100000n; // skips the reserved window
    if (r.iova !== want) assert.is(r.iova, want);
    areas = areas.insert(r.iova, r.iova + P - 1n, i);
  }
  assert.is(areas.selfCheck(), N);
  const packed = areas;
  const at = (k: number): bigint => {
    const v = P + BigInt(k) * P;
    return v >= 0x10000000n ? v + 0x100000n : v;
  };
  for (let k = 1000; k < N; k += 1000) areas = areas.remove(at(k));
  for (let k = 1000; k < N; k += 1000) {
    const r = allocIova({ ...base, areas });
    assert.ok(r.ok && r.iova === at(k));
    if (r.ok) areas = areas.insert(r.iova, r.iova + P - 1n, -k);
  }
  const big = allocIova({ ...base, areas, length: 2n * P, addr: 0n });
  // The only hole left is after the last area; ALIGN(end, 0x2000).
  const end = P + BigInt(N) * P + 0x100000n;
  assert.ok(big.ok && big.iova === (end + 0x1fffn) / 0x2000n * 0x2000n);
  for (let k = 1000; k < N; k += 1000) assert.is(areas.find(at(k))?.value, -k);
  assert.is(packed.size, N);
  assert.is(packed.find(at(1000))?.value, 1000);
  assert.is(packed.find(at(150000))?.value, 150000);
});

test.run();

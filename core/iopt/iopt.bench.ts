/*
 * Benchmark (node script, not a test): ops/s of the IOVA structures at 100k
 * areas, plus sorted-btree doing the same persistent updates for comparison.
 * Run: npx tsc -p tsconfig.json && node dist/core/iopt/iopt.bench.js
 * Timing lives only here; the model itself never reads a clock.
 */

import sortedBtree from 'sorted-btree';
import { allocIova, IntervalMap, ReservedMap } from './index.js';

const BTree = sortedBtree.default;
const N = 100_000;
const P = 0x1000n;
const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const at = (i: number): bigint => P + BigInt((i * 7919) % N) * 2n * P;

function bench(name: string, ops: number, f: () => void): void {
  f(); // warm-up pass, also JIT
  const t0 = process.hrtime.bigint();
  f();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name.padEnd(44)} ${Math.round(ops / s).toLocaleString('en-US').padStart(12)} ops/s`);
}

let m = IntervalMap.empty<number>();
for (let i = 0; i < N; i++) m = m.insert(at(i), at(i) + P - 1n, i);
const probes = Array.from({ length: N }, (_, i) => at(i * 31) + BigInt(i % 4096));

let sink = 0;
bench('IntervalMap.find (hit)', N, () => {
  for (const q of probes) if (m.find(q) !== undefined) sink++;
});
bench('IntervalMap.anyIntersects (miss, in gap)', N, () => {
  for (const q of probes) if (m.anyIntersects(q + P, q + P)) sink++;
});
bench('IntervalMap.insert+remove (persistent)', 2 * N, () => {
  let v = m;
  for (let i = 0; i < N; i++) {
    const s = at(i) + P; // the gap after area i
    v = v.insert(s, s + P - 1n, i).remove(s);
  }
});

const bt0 = new BTree<bigint, number>(undefined, cmp);
for (let i = 0; i < N; i++) bt0.set(at(i), i);
bt0.freeze();
bench('sorted-btree getPairOrNextLower (find)', N, () => {
  for (const q of probes) if (bt0.getPairOrNextLower(q) !== undefined) sink++;
});
bench('sorted-btree with+without (persistent)', 2 * N, () => {
  let v = bt0;
  for (let i = 0; i < N; i++) v = v.with(at(i) + P, i).without(at(i) + P);
});

const reserved = ReservedMap.empty().add('dev:msi', 0xfee00000n, 0xfeefffffn);
const none = IntervalMap.empty<unknown>();
let packed = IntervalMap.empty<unknown>();
for (let i = 0; i < N; i++) packed = packed.insert(P + BigInt(i) * P, BigInt(i + 2) * P - 1n, i);
const A = 2000;
bench('allocIova, 100k packed areas (first-fit end)', A, () => {
  for (let i = 0; i < A; i++) {
    const r = allocIova({ areas: packed, reserved, allowed: none, length: P, addr: P, iovaAlignment: P });
    if (r.ok) sink++;
  }
});
const btPacked = new BTree<bigint, bigint>(undefined, cmp);
for (let i = 0; i < N; i++) btPacked.set(P + BigInt(i) * P, BigInt(i + 2) * P - 1n);
bench('sorted-btree walk to first gap (same 100k)', 20, () => {
  for (let i = 0; i < 10; i++) {
    let reach = P;
    btPacked.forRange(P, 1n << 62n, true, (k, last) => {
      if (k > reach) return { break: true };
      reach = last + 1n;
      return undefined;
    });
    if (reach > P) sink++;
  }
});
let frag = IntervalMap.empty<unknown>();
for (let i = 0; i < N; i++) frag = frag.insert(at(i), at(i) + P - 1n, i);
bench('allocIova, 100k one-page holes, 2-page ask', 20, () => {
  for (let i = 0; i < 10; i++) {
    const r = allocIova({ areas: frag, reserved, allowed: none, length: 2n * P, addr: 0n, iovaAlignment: P });
    if (r.ok) sink++;
  }
});
let res = ReservedMap.empty();
bench('ReservedMap.add+removeOwner (4 ranges/owner)', 4 * 10_000, () => {
  res = ReservedMap.empty();
  for (let i = 0; i < 10_000; i++) {
    for (let j = 0n; j < 4n; j++) res = res.add(`dev:${i}`, BigInt(i) * 0x10000n + j * P, BigInt(i) * 0x10000n + j * P + 0xfffn);
  }
  for (let i = 0; i < 10_000; i++) res = res.removeOwner(`dev:${i}`);
});
console.log(`(sink ${sink})`);

// Page-table behaviour per format: walks at every level, iommu_pgsize-style size
// selection, splitting, freeing of empty table pages, cost in nodes, persistence.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARM_LPAE_S2, MOCK, PtFormat, READ, RW, VTD_SL, WRITE, depthsForSizes, smallNumber } from './format.js';
import { PageTable, PtCounters, PtNode, emptyTable, leafCode, map, mapRuns, stats, unmap, walk } from './pagetable.js';
import { markDirty, readDirty, runs } from './ptiter.js';

const domainDirty = (pt: PageTable, iova: bigint): PageTable => markDirty(pt, Number(iova >> 12n));

const K4 = 0x1000n;
const M2 = 0x200000n;
const G1 = 0x40000000n;
const T1 = 1n << 40n;

const table = (f: PtFormat, sizes = f.pageSizes): PageTable => emptyTable(f, depthsForSizes(f, sizes));
const leafCounts = (pt: PageTable): Record<string, number> =>
  Object.fromEntries(stats(pt).leaves.map((l) => [l.pageSize.toString(16), l.count]));

test('format descriptors', () => {
  assert.is(VTD_SL.pageSizes, K4 | M2 | G1);
  assert.is(ARM_LPAE_S2.pageSizes, K4 | M2 | G1);
  assert.is(MOCK.pageSizes, 0x800n | 0x100000n);
  assert.is(VTD_SL.iovaBits, 48);
  assert.is(ARM_LPAE_S2.iovaBits, 48);
  assert.is(MOCK.iovaBits, 38);
  assert.is(MOCK.aperture?.last, 0x7fffffffn);
});

for (const f of [VTD_SL, ARM_LPAE_S2]) {
  const lvl = (d: number): number => f.levelOf(d);

  test(`${f.name}: walks at every leaf level with native level numbers`, () => {
    let pt = table(f);
    pt = map(pt, G1, 5n * G1, G1, READ);
    pt = map(pt, 4n * G1 + M2, 7n * M2, M2, RW);
    pt = map(pt, 8n * G1 + 3n * K4, 0x123000n, K4, WRITE);
    assert.equal(walk(pt, G1 + 0x1234n), { pa: 5n * G1 + 0x1234n, prot: READ, pageSize: G1, level: lvl(1) });
    assert.equal(walk(pt, 4n * G1 + M2 + M2 - 1n), { pa: 8n * M2 - 1n, prot: RW, pageSize: M2, level: lvl(2) });
    assert.equal(walk(pt, 8n * G1 + 3n * K4 + 5n), { pa: 0x123005n, prot: WRITE, pageSize: K4, level: lvl(3) });
    assert.is(walk(pt, 0n), null);
    assert.is(walk(pt, 2n * G1), null);
    assert.is(walk(pt, 1n << 48n), null);
    assert.is(pt.nodes, 1 + 1 + 2 + 1); // root, one 512 GiB table, two 1 GiB tables, one 2 MiB table
  });

  test(`${f.name}: largest page size allowed by iova, pa and length alignment`, () => {
    let pt = map(table(f), 2n * M2, 4n * M2, M2, RW);
    assert.is(walk(pt, 2n * M2)!.pageSize, M2);
    pt = map(table(f), 2n * M2, 4n * M2 + K4, M2, RW); // misaligned pa
    assert.is(walk(pt, 2n * M2)!.pageSize, K4);
    assert.is(leafCounts(pt)['1000'], 512);
    pt = map(table(f), 2n * M2, 4n * M2, M2 - K4, RW); // short length
    assert.is(leafCounts(pt)['200000'], 0);
    // Mixed: 4K head up to the 2M boundary, then 2M leaves, then a 4K tail.
    pt = map(table(f), M2 - K4, 3n * M2 - K4, M2 + 2n * K4, RW);
    assert.equal(leafCounts(pt), { '1000': 2, '200000': 1, '40000000': 0 });
    pt = map(table(f), G1, G1, G1 + M2, RW);
    assert.equal(leafCounts(pt), { '1000': 0, '200000': 1, '40000000': 1 });
    assert.equal(runs(pt), [{ iova: G1, pa: G1, length: G1 + M2, prot: RW }]);
  });

  test(`${f.name}: huge pages disabled uses the smallest size only`, () => {
    const pt = map(table(f, K4), 0n, 0n, M2, READ);
    assert.equal(leafCounts(pt), { '1000': 512, '200000': 0, '40000000': 0 });
    const pt2 = map(table(f, K4 | G1), 0n, 0n, G1 + M2, READ);
    assert.equal(leafCounts(pt2), { '1000': 512, '200000': 0, '40000000': 1 });
  });

  test(`${f.name}: mapping over an existing mapping throws`, () => {
    const pt = map(table(f), G1, G1, G1, READ);
    assert.throws(() => map(pt, G1 + M2, 0n, K4, READ), /existing/);
    assert.throws(() => map(pt, 0n, 0n, G1 + K4, READ), /existing/);
    const pt2 = map(table(f), K4, K4, K4, READ);
    assert.throws(() => map(pt2, 0n, 0n, M2, READ), /existing/);
    assert.throws(() => map(pt2, 0n, 0n, 0x800n, READ), /aligned/);
    assert.throws(() => map(pt2, 1n << 48n, 0n, K4, READ), /beyond/);
    assert.throws(() => map(pt2, 0n, 0n, K4, 0), /prot/);
  });

  test(`${f.name}: partial unmap splits a huge leaf and keeps the outside mapped`, () => {
    const pt = map(table(f), G1, 3n * G1, G1, RW);
    const hole = G1 + 5n * M2 + 3n * K4;
    const r = unmap(pt, hole, K4);
    assert.is(r.unmapped, K4);
    assert.is(walk(r.pt, hole), null);
    assert.equal(walk(r.pt, hole - 1n), { pa: 3n * G1 + 5n * M2 + 3n * K4 - 1n, prot: RW, pageSize: K4, level: lvl(3) });
    assert.equal(walk(r.pt, G1)!.pageSize, M2);
    assert.equal(walk(r.pt, 2n * G1 - 1n)!.pa, 4n * G1 - 1n);
    assert.equal(leafCounts(r.pt), { '1000': 511, '200000': 511, '40000000': 0 });
    assert.equal(runs(r.pt), [
      { iova: G1, pa: 3n * G1, length: hole - G1, prot: RW },
      { iova: hole + K4, pa: 3n * G1 + (hole + K4 - G1), length: 2n * G1 - hole - K4, prot: RW },
    ]);
    // Persistence: the old table is untouched.
    assert.equal(walk(pt, hole)!.pageSize, G1);
    assert.equal(leafCounts(pt)['40000000'], 1);
  });

  test(`${f.name}: unmap frees emptied table pages and reports bytes unmapped`, () => {
    const pt0 = table(f);
    let pt = map(pt0, 0x7000n, 0x1000n, 3n * K4, READ);
    pt = map(pt, 5n * G1, 0n, M2, READ);
    assert.is(pt.nodes, 1 + 2 + 1 + 1);
    let r = unmap(pt, 0n, 4n * G1);
    assert.is(r.unmapped, 3n * K4);
    assert.is(r.pt.nodes, 1 + 1 + 1);
    r = unmap(r.pt, 0n, 1n << 48n);
    assert.is(r.unmapped, M2);
    assert.is(r.pt.nodes, 1);
    assert.is(r.pt.root.used, 0);
    r = unmap(r.pt, 0n, K4);
    assert.is(r.unmapped, 0n);
    // Past the table's reach there is nothing to unmap; past u64 is a caller bug.
    assert.is(unmap(pt, 0n, 1n << 64n).unmapped, 3n * K4 + M2);
    assert.is(unmap(pt, 1n << 50n, K4).pt, pt);
    assert.throws(() => unmap(pt, K4, 1n << 64n), /u64/);
    assert.throws(() => unmap(pt, 0x800n, K4), /aligned/);
    assert.is(pt0.nodes, 1);
  });

  test(`${f.name}: 1 TiB map and unmap cost is counted in table entries, not bytes`, () => {
    const c: PtCounters = { nodesTouched: 0, leafWrites: 0 };
    const pt = map(table(f), T1, 2n * T1, T1, RW, c);
    assert.is(c.leafWrites, 1024);
    assert.is(c.nodesTouched, 3);
    assert.equal(leafCounts(pt)['40000000'], 1024);
    const u: PtCounters = { nodesTouched: 0, leafWrites: 0 };
    const r = unmap(pt, 0n, 1n << 48n, u);
    assert.is(r.unmapped, T1);
    assert.is(u.leafWrites, 1024);
    assert.ok(u.nodesTouched <= 3);
    assert.is(r.pt.nodes, 1);
    // A 4 KiB hole in the middle of the TiB costs a split path, not a rewrite.
    const h: PtCounters = { nodesTouched: 0, leafWrites: 0 };
    const r2 = unmap(pt, T1 + 17n * G1 + 9n * M2, K4, h);
    assert.ok(h.nodesTouched < 10, `touched ${h.nodesTouched}`);
    assert.is(r2.unmapped, K4);
  });

  test(`${f.name}: runs coalesce contiguous iova+pa with equal prot, clip to a window`, () => {
    let pt = map(table(f), 0n, 0x100000n, 2n * K4, READ);
    pt = map(pt, 2n * K4, 0x102000n, K4, READ);
    pt = map(pt, 3n * K4, 0x200000n, K4, READ);
    pt = map(pt, 4n * K4, 0x201000n, K4, RW);
    assert.equal(runs(pt), [
      { iova: 0n, pa: 0x100000n, length: 3n * K4, prot: READ },
      { iova: 3n * K4, pa: 0x200000n, length: K4, prot: READ },
      { iova: 4n * K4, pa: 0x201000n, length: K4, prot: RW },
    ]);
    assert.equal(runs(pt, 0x1800n, 0x37ffn), [
      { iova: 0x1800n, pa: 0x101800n, length: 0x1800n, prot: READ },
      { iova: 3n * K4, pa: 0x200000n, length: 0x800n, prot: READ },
    ]);
  });
}

test('mock: 2 KiB leaves, 1 MiB huge leaves only when huge pages are enabled', () => {
  const M1 = 0x100000n;
  const base = MOCK.aperture!.start;
  const huge = map(table(MOCK), base, 0x40000000n, 2n * M1 + 0x800n, RW);
  assert.equal(walk(huge, base + 5n), { pa: 0x40000005n, prot: RW, pageSize: M1, level: 2 });
  assert.equal(walk(huge, base + 2n * M1 + 0x7ffn), { pa: 0x40000000n + 2n * M1 + 0x7ffn, prot: RW, pageSize: 0x800n, level: 1 });
  assert.equal(leafCounts(huge), { '800': 1, '100000': 2 });
  const small = map(table(MOCK, 0x800n), base, 0x40000000n, M1, RW);
  assert.equal(leafCounts(small), { '800': 512, '100000': 0 });
  const r = unmap(huge, base + M1, 0x800n);
  assert.equal(leafCounts(r.pt), { '800': 512, '100000': 1 });
  assert.throws(() => map(huge, 0x400n, 0n, 0x800n, READ), /aligned/);
  assert.throws(() => map(huge, 1n << 38n, 0n, 0x800n, READ), /beyond/);
});

test('pa near 2^64 is exact', () => {
  const pa = (1n << 64n) - G1;
  const pt = map(table(VTD_SL), G1, pa, G1, READ);
  assert.is(walk(pt, 2n * G1 - 1n)!.pa, (1n << 64n) - 1n);
  assert.equal(runs(pt), [{ iova: G1, pa, length: G1, prot: READ }]);
  assert.throws(() => map(pt, 0n, pa + K4, G1, READ), /u64/);
});

test('smallNumber: exact below 2^53, -1 outside (the 64-bit scratch never wraps a value in)', () => {
  for (const x of [0n, 1n, 0xfffn, 0xffffffffn, 0x100000000n, 0x123456789abcn, (1n << 53n) - 1n]) assert.is(smallNumber(x), Number(x));
  for (const x of [-1n, 1n << 53n, (1n << 64n) + 5n, -(1n << 64n), (1n << 64n) - 1n, 1n << 100n]) assert.is(smallNumber(x), -1);
  // Ranges that would wrap into small numbers stay unusual for map and unmap.
  const pt = emptyTable(VTD_SL, depthsForSizes(VTD_SL, VTD_SL.pageSizes));
  assert.throws(() => map(pt, (1n << 64n) + 0x1000n, 0x1000n, 0x1000n, RW));
  assert.throws(() => unmap(pt, -0x1000n, 0x1000n));
});

test('table pages keep only the slots they use: sparse pages copy short arrays, unmaps trim them', () => {
  let pt = emptyTable(VTD_SL, VTD_SL.leafDepths);
  // One 4 KiB page at iova 0: the root and both lower tables hold one slot each.
  pt = map(pt, 0n, 0x5000n, 0x1000n, RW);
  for (let n: PtNode = pt.root, d = 0; d < 4; d++) {
    assert.is(n.chunks.length, 1, `depth ${d} index`);
    assert.is((n.chunks[0] as readonly unknown[]).length, 1, `depth ${d} chunk`);
    const s = n.slot(0);
    if (d < 3) n = s as PtNode;
  }
  // A page at the end of the same leaf table: the index and that chunk reach slot 511.
  pt = map(pt, 511n * 0x1000n, 0x7000n, 0x1000n, RW);
  const leafTable = (t: PageTable): PtNode => ((t.root.slot(0) as PtNode).slot(0) as PtNode).slot(0) as PtNode;
  assert.is(leafTable(pt).chunks.length, 16);
  assert.is((leafTable(pt).chunks[15] as readonly unknown[]).length, 32);
  assert.is(leafTable(pt).slot(511), leafCode(7, RW, 3));
  assert.is(leafTable(pt).slot(510), undefined);
  assert.is(leafTable(pt).slot(100), undefined);
  // Unmapping it trims the index back to the first chunk; the older table is unchanged.
  const before = pt;
  pt = unmap(pt, 511n * 0x1000n, 0x1000n).pt;
  assert.is(leafTable(pt).chunks.length, 1);
  assert.is(leafTable(before).slot(511), leafCode(7, RW, 3));
  // A partial unmap inside a chunk trims that chunk's tail.
  pt = map(pt, 0x1000n, 0x10000n, 0x4000n, RW); // slots 1..4
  pt = unmap(pt, 0x3000n, 0x2000n).pt; // slots 3..4 go
  assert.is((leafTable(pt).chunks[0] as readonly unknown[]).length, 3);
  assert.equal(runs(pt), [
    { iova: 0n, pa: 0x5000n, length: 0x1000n, prot: RW },
    { iova: 0x1000n, pa: 0x10000n, length: 0x2000n, prot: RW },
  ]);
});

test('run chunks: a whole chunk of consecutive 4 KiB leaves is one number, read, split and unmapped like 32 leaves', () => {
  const chunk = (t: PageTable, c: number): unknown => (((t.root.slot(0) as PtNode).slot(0) as PtNode).slot(0) as PtNode).chunks[c];
  let pt = emptyTable(VTD_SL, VTD_SL.leafDepths);
  // Slots 16..95 at pa 0x100000+: chunk 0 partly (array), chunks 1 and 2 whole (runs).
  pt = map(pt, 16n * 0x1000n, 0x100000n, 80n * 0x1000n, RW);
  assert.type(chunk(pt, 0), 'object');
  assert.is(chunk(pt, 1), leafCode(0x100 + 16, RW, 3));
  assert.is(chunk(pt, 2), leafCode(0x100 + 48, RW, 3));
  assert.is(walk(pt, 40n * 0x1000n + 5n)!.pa, 0x100000n + 24n * 0x1000n + 5n);
  assert.equal(stats(pt).leaves[0], { pageSize: 0x1000n, count: 80 });
  // Overlap inside a run chunk is caught.
  assert.throws(() => map(pt, 50n * 0x1000n, 0x900000n, 0x1000n, RW), /map over existing mapping at iova 0x32000/);
  // Unmapping part of a run chunk turns it into an array; the older table still has the run.
  const before = pt;
  const r = unmap(pt, 40n * 0x1000n, 0x2000n);
  assert.is(r.unmapped, 0x2000n);
  pt = r.pt;
  assert.type(chunk(pt, 1), 'object');
  assert.is(chunk(before, 1), leafCode(0x100 + 16, RW, 3));
  assert.equal(runs(pt), [
    { iova: 0x10000n, pa: 0x100000n, length: 24n * 0x1000n, prot: RW },
    { iova: 42n * 0x1000n, pa: 0x100000n + 26n * 0x1000n, length: 54n * 0x1000n, prot: RW },
  ]);
  // Dirty tracking writes a leaf of a run chunk like any other.
  const dirty = domainDirty(pt, 70n * 0x1000n);
  assert.equal(readDirty(dirty, 0n, 0x200000n, 0x1000n, false).dirty, [{ iova: 70n * 0x1000n, length: 0x1000n }]);
  assert.type(chunk(pt, 2), 'number');
  // Unmapping a whole run chunk and the rest empties the table.
  const all = unmap(pt, 0n, 0x200000n);
  assert.is(all.unmapped, 78n * 0x1000n);
  assert.is(all.pt.nodes, 1);
  // Not at a larger leaf depth: 2 MiB leaves stay an array even over a whole chunk.
  const big = map(emptyTable(VTD_SL, VTD_SL.leafDepths), 0n, 0n, 32n * 0x200000n, RW);
  assert.type(((big.root.slot(0) as PtNode).slot(0) as PtNode).chunks[0], 'object');
  // Nor for pfns whose codes are bigints.
  const hi = map(emptyTable(VTD_SL, VTD_SL.leafDepths), 0n, (1n << 60n) - 0x100000n, 0x20000n, RW);
  assert.type(chunk(hi, 0), 'object');
  assert.is(walk(hi, 0x1f000n)!.pa, (1n << 60n) - 0x100000n + 0x1f000n);
});

test('mapRuns: many runs (past the scratch size), a failed map, then pfns near 2^52 stay exact', () => {
  // 200 one-page runs with scattered pa: the same as mapping them one by one.
  const many = Array.from({ length: 200 }, (_, i) => ({ iova: BigInt(i) * 0x2000n, pa: BigInt((i * 7919) % 1000) * 0x1000n + 0x100000000n, length: 0x1000n }));
  const t = mapRuns(emptyTable(VTD_SL, VTD_SL.leafDepths), many, RW);
  const one = many.reduce((pt, r) => map(pt, r.iova, r.pa, r.length, RW), emptyTable(VTD_SL, VTD_SL.leafDepths));
  assert.equal(runs(t), runs(one));
  assert.is(runs(t).length, 200);
  // An overlapping map throws; the next one is unaffected by what it left behind.
  assert.throws(() => mapRuns(t, [{ iova: 0x10000n, pa: 0n, length: 0x1000n }, { iova: 0x2000n, pa: 0n, length: 0x1000n }], RW), /existing/);
  const top = (1n << 64n) - 0x2000n; // pfn 2^52 - 2: exact in the scratch, a bigint code
  const u = mapRuns(t, [{ iova: 0x1000n, pa: top, length: 0x1000n }, { iova: 0x3000n, pa: top + 0x1000n, length: 0x1000n }], READ);
  assert.is(walk(u, 0x1000n)!.pa, top);
  assert.is(walk(u, 0x3fffn)!.pa, top + 0x1fffn);
});

test.run();

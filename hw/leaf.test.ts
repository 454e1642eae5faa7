// Packed leaf codes (hw/pagetable.ts): pfn, READ/WRITE/DIRTY bits and depth survive a
// round trip at the extremes, a code is a number exactly below SMALL_PFN_END and a
// bigint from there on, and tables whose leaves straddle that boundary behave the same
// as any other (map, walk, runs, split, dirty bits, unmap).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DIRTY, MOCK, READ, RW, VTD_SL, WRITE, depthsForSizes } from './format.js';
import { SMALL_PFN_END, emptyTable, isTable, leafCode, leafDepth, leafPfn, leafProt, map, unmap, walk } from './pagetable.js';
import { markDirty, readDirty, runs } from './ptiter.js';

const pfns = [0, 1, 2 ** 20 - 1, 2 ** 24, 2 ** 40 - 1, 2 ** 40, 2 ** 40 + 1, SMALL_PFN_END - 1, SMALL_PFN_END, SMALL_PFN_END + 1, 2 ** 52 - 1, 2 ** 53 - 1];

test('leaf codes round-trip every pfn extreme, bit combination and depth', () => {
  for (const pfn of pfns) {
    for (let prot = 0; prot <= (READ | WRITE | DIRTY); prot++) {
      for (let depth = 0; depth < 8; depth++) {
        const l = leafCode(pfn, prot, depth);
        assert.is(typeof l, pfn < SMALL_PFN_END ? 'number' : 'bigint');
        if (typeof l === 'number') assert.ok(Number.isSafeInteger(l), `code of ${pfn} exact`);
        assert.not.ok(isTable(l));
        if (leafPfn(l) !== pfn || leafProt(l) !== prot || leafDepth(l) !== depth) {
          assert.unreachable(`${pfn}/${prot}/${depth} -> ${String(l)} -> ${leafPfn(l)}/${leafProt(l)}/${leafDepth(l)}`);
        }
      }
    }
  }
  assert.is(SMALL_PFN_END, 2 ** 47);
});

test('leaves on both sides of the number/bigint boundary map, walk, split and unmap', () => {
  const K4 = 0x1000n;
  const edge = BigInt(SMALL_PFN_END) << 12n; // first pa whose leaf code is a bigint
  const iova = 0x7f000n;
  let pt = emptyTable(VTD_SL, depthsForSizes(VTD_SL, VTD_SL.pageSizes));
  pt = map(pt, iova, edge - 3n * K4, 6n * K4, RW);
  assert.equal(runs(pt), [{ iova, pa: edge - 3n * K4, length: 6n * K4, prot: RW }]);
  for (let k = 0n; k < 6n; k++) assert.equal(walk(pt, iova + k * K4 + 5n), { pa: edge - 3n * K4 + k * K4 + 5n, prot: RW, pageSize: K4, level: 1 });
  // Dirty bits on either side, then read and cleared.
  const g = Number(iova >> 12n);
  let d = markDirty(markDirty(pt, g + 2), g + 3);
  assert.is(walk(d, iova + 2n * K4)!.prot, RW | DIRTY);
  assert.is(walk(d, iova + 3n * K4)!.prot, RW | DIRTY);
  assert.is(walk(d, iova + 4n * K4)!.prot, RW);
  const r = readDirty(d, iova, 6n * K4, K4, true);
  assert.equal(r.dirty, [{ iova: iova + 2n * K4, length: 2n * K4 }]);
  assert.is(walk(r.pt, iova + 3n * K4)!.prot, RW);
  d = r.pt;
  // A hole across the boundary, then everything.
  const u = unmap(d, iova + 2n * K4, 2n * K4);
  assert.is(u.unmapped, 2n * K4);
  assert.equal(runs(u.pt), [
    { iova, pa: edge - 3n * K4, length: 2n * K4, prot: RW },
    { iova: iova + 4n * K4, pa: edge + K4, length: 2n * K4, prot: RW },
  ]);
  const all = unmap(u.pt, 0n, 1n << 48n);
  assert.is(all.unmapped, 4n * K4);
  assert.is(all.pt.nodes, 1);
  assert.equal([...all.pt.leaves], [0, 0, 0, 0]);
  // The older tables still read as before.
  assert.is(runs(pt).length, 1);
  assert.is(walk(d, iova + 2n * K4)!.prot, RW);
});

test('huge leaves with bigint codes split with their pa, prot and dirty bit', () => {
  const M1 = 0x100000n;
  const base = MOCK.aperture!.start;
  const pa = (1n << 64n) - 4n * M1; // pfn ~ 2^53 with 2 KiB granules
  let pt = emptyTable(MOCK, depthsForSizes(MOCK, MOCK.pageSizes));
  pt = map(pt, base, pa, 2n * M1, READ);
  assert.equal(walk(pt, base + M1 + 7n), { pa: pa + M1 + 7n, prot: READ, pageSize: M1, level: 2 });
  pt = markDirty(pt, Number((base + M1) >> 11n));
  const r = unmap(pt, base + M1 + 0x800n, 0x800n);
  assert.is(r.unmapped, 0x800n);
  assert.equal(walk(r.pt, base + M1 + 0x1000n), { pa: pa + M1 + 0x1000n, prot: READ | DIRTY, pageSize: 0x800n, level: 1 });
  assert.equal(walk(r.pt, base + 5n), { pa: pa + 5n, prot: READ, pageSize: M1, level: 2 });
  assert.is(walk(r.pt, base + M1 + 0x800n), null);
});

test('a run of leaves over an existing mapping names its first overlapping page', () => {
  const K4 = 0x1000n;
  let pt = emptyTable(VTD_SL, depthsForSizes(VTD_SL, VTD_SL.pageSizes));
  pt = map(pt, 0x41000n, 0x9000n, K4, READ);
  assert.throws(() => map(pt, 0x3000n, 0x80000n, 0x100n * K4, RW), (e: Error) => e.message === 'map over existing mapping at iova 0x41000');
  assert.throws(() => map(pt, 0x3000n, 0x80001000n, 0x100n * K4, RW), (e: Error) => e.message === 'map over existing mapping at iova 0x41000');
  assert.equal(runs(pt), [{ iova: 0x41000n, pa: 0x9000n, length: K4, prot: READ }]);
});

test.run();

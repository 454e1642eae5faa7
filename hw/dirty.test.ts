// Dirty tracking: DMA writes set leaf DIRTY bits only while tracking is enabled;
// readDirty reports pageSize chunks (a dirty huge leaf marks all it covers) and clears.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DIRTY,
  EMPTY_HW,
  HwState,
  RW,
  addUnit,
  allocDomain,
  dirtyChunks,
  dma,
  domainMap,
  domainReadDirty,
  domainUnmap,
  domainWalk,
  setContext,
  setDirtyTracking,
} from './index.js';

const K4 = 0x1000n;
const M2 = 0x200000n;

function setup(): { hw: HwState; d: number } {
  let hw = addUnit(EMPTY_HW, 'smmu0', 'arm-lpae-s2');
  const r = allocDomain(hw, 'smmu0', { hugePages: true });
  hw = setContext(r.hw, 'smmu0', 'dev0', { kind: 'domain', domain: r.domain });
  hw = domainMap(hw, r.domain, 0n, 0x800000n, 4n * K4, RW);
  hw = domainMap(hw, r.domain, M2, 0x400000n, M2, RW);
  return { hw, d: r.domain };
}

const isDirty = (hw: HwState, d: number, iova: bigint): boolean => ((domainWalk(hw, d, iova)?.prot ?? 0) & DIRTY) !== 0;

test('writes set DIRTY only with tracking on; reads never', () => {
  let { hw, d } = setup();
  hw = dma(hw, 'smmu0', 'dev0', 0n, 4n, 'write').hw;
  assert.not.ok(isDirty(hw, d, 0n));
  hw = setDirtyTracking(hw, d, true);
  hw = dma(hw, 'smmu0', 'dev0', K4, 4n, 'read').hw; // warm the IOTLB
  const before = hw;
  hw = dma(hw, 'smmu0', 'dev0', K4, 4n, 'read').hw;
  assert.is(hw, before); // warm IOTLB read: nothing changes
  hw = dma(hw, 'smmu0', 'dev0', K4 + 8n, 4n, 'write').hw;
  assert.ok(isDirty(hw, d, K4));
  assert.not.ok(isDirty(hw, d, 0n));
  assert.not.ok(isDirty(before, d, K4)); // persistence
  const again = dma(hw, 'smmu0', 'dev0', K4, 1n, 'write').hw;
  assert.is(again, hw); // already dirty: no new state
});

test('readDirty reports chunks, a huge leaf marks every chunk it covers, clear resets', () => {
  let { hw, d } = setup();
  hw = setDirtyTracking(hw, d, true);
  hw = dma(hw, 'smmu0', 'dev0', 2n * K4, 1n, 'write').hw;
  hw = dma(hw, 'smmu0', 'dev0', M2 + 5n, 1n, 'write').hw;
  const peek = domainReadDirty(hw, d, 0n, 0x400000n, 0x80000n, false);
  assert.is(peek.hw, hw);
  assert.equal(peek.dirty, [
    { iova: 0n, length: 0x80000n },
    { iova: M2, length: M2 },
  ]);
  // A window inside the huge leaf only reports its own chunks.
  const win = domainReadDirty(hw, d, M2 + 0x100000n, 2n * K4, K4, false);
  assert.equal(dirtyChunks(win.dirty, K4), [M2 + 0x100000n, M2 + 0x101000n]);
  const small = domainReadDirty(hw, d, 0n, 4n * K4, K4, true);
  assert.equal(dirtyChunks(small.dirty, K4), [2n * K4]);
  assert.not.ok(isDirty(small.hw, d, 2n * K4));
  assert.ok(isDirty(small.hw, d, M2));
  const all = domainReadDirty(small.hw, d, 0n, 1n << 48n, M2, true);
  assert.equal(all.dirty, [{ iova: M2, length: M2 }]);
  assert.equal(domainReadDirty(all.hw, d, 0n, 1n << 48n, K4, false).dirty, []);
  assert.throws(() => domainReadDirty(hw, d, K4, K4, M2, false), /aligned/);
});

test('enabling tracking clears existing dirty bits; split keeps dirty state', () => {
  let { hw, d } = setup();
  hw = setDirtyTracking(hw, d, true);
  hw = dma(hw, 'smmu0', 'dev0', M2, 1n, 'write').hw;
  // Splitting the dirty 2 MiB leaf keeps its outside parts dirty.
  const split = domainUnmap(hw, d, M2 + 0x10000n, K4).hw;
  assert.ok(isDirty(split, d, M2 + 0x11000n));
  hw = setDirtyTracking(setDirtyTracking(hw, d, false), d, true);
  assert.not.ok(isDirty(hw, d, M2));
  assert.equal(domainReadDirty(hw, d, 0n, 1n << 48n, K4, false).dirty, []);
});

test.run();

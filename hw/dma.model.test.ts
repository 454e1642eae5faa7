// Seeded end-to-end test: a well-behaved driver model (invalidates after every unmap)
// must see DMA results equal to a direct reading of the domain's runs, the IOTLB must
// stay consistent, and tracked writes must show up in readDirty. A forgetful driver
// (no invalidation) must be caught by iotlbConsistent or by a stale translation.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lcg } from './testutil.js';
import {
  DmaResult,
  EMPTY_HW,
  HwState,
  READ,
  RW,
  WRITE,
  addUnit,
  allocDomain,
  dirtyChunks,
  dma,
  domainMap,
  domainReadDirty,
  domainRuns,
  domainUnmap,
  invalidate,
  iotlbConsistent,
  setContext,
  setDirtyTracking,
} from './index.js';

const K4 = 0x1000n;
const M2 = 0x200000n;

/** What a DMA must do if the hardware had no cache: read straight off the runs. */
function expected(hw: HwState, d: number, iova: bigint, length: bigint, write: boolean): DmaResult {
  const rs = domainRuns(hw, d, iova, iova + length - 1n);
  const segs: { iova: bigint; pa: bigint; length: bigint }[] = [];
  let cur = iova;
  for (const r of rs) {
    if (r.iova !== cur) break;
    if ((r.prot & (write ? WRITE : READ)) === 0) return { ok: false, fault: 'permission', iova: cur, reason: '' };
    const p = segs[segs.length - 1];
    if (p && p.pa + p.length === r.pa) p.length += r.length;
    else segs.push({ iova: r.iova, pa: r.pa, length: r.length });
    cur += r.length;
  }
  if (cur !== iova + length) return { ok: false, fault: 'not_present', iova: cur, reason: '' };
  return { ok: true, pa: segs[0]!.pa, segments: segs };
}

const strip = (r: DmaResult): unknown => (r.ok ? r : { ...r, reason: '' });

function world(capacity: number): { hw: HwState; d: number } {
  let hw = addUnit(EMPTY_HW, 'dmar0', 'vtd-sl', { iotlbCapacity: capacity });
  const a = allocDomain(hw, 'dmar0', { hugePages: true });
  hw = setContext(a.hw, 'dmar0', 'dev0', { kind: 'domain', domain: a.domain });
  return { hw: setDirtyTracking(hw, a.domain, true), d: a.domain };
}

test('well-behaved driver: DMA equals the page tables, IOTLB consistent, dirty seen', () => {
  const rnd = lcg(2024);
  let { hw, d } = world(8);
  const addr = (): bigint => BigInt(rnd(3)) * M2 + BigInt(rnd(600)) * K4;
  const written = new Set<bigint>();
  const outcomes: Record<string, number> = {};
  for (let step = 0; step < 600; step++) {
    const op = rnd(10);
    if (op < 3) {
      const s = addr();
      const len = BigInt(1 + rnd(700)) * K4;
      const pa = (s % M2) + BigInt(8 + rnd(4)) * M2 + (rnd(4) === 0 ? K4 : 0n);
      const overlap = domainRuns(hw, d, s, s + len - 1n).length > 0;
      if (!overlap) hw = domainMap(hw, d, s, pa, len, [READ, RW][rnd(2)]!);
    } else if (op < 5) {
      const s = addr();
      const len = BigInt(1 + rnd(500)) * K4;
      hw = domainUnmap(hw, d, s, len).hw;
      for (const a of [...written]) if (a >= s && a < s + len) written.delete(a); // a remap starts clean
      hw = invalidate(hw, 'dmar0', { domain: d, iova: s, length: len });
    } else {
      const iova = addr() + BigInt(rnd(4096));
      const length = BigInt(1 + rnd(3 * 4096));
      const write = rnd(2) === 0;
      const want = expected(hw, d, iova, length, write);
      const got = dma(hw, 'dmar0', 'dev0', iova, length, write ? 'write' : 'read');
      assert.equal(strip(got.result), strip(want), `step ${step}`);
      const k = `${write ? 'w' : 'r'}:${got.result.ok ? 'ok' : got.result.fault}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
      if (write && got.result.ok) for (const s of got.result.segments) for (let a = s.iova & ~(K4 - 1n); a < s.iova + s.length; a += K4) written.add(a);
      hw = got.hw;
    }
    assert.equal(iotlbConsistent(hw), [], `step ${step}`);
  }
  // Every page written since it was mapped reads back dirty (a huge leaf may add more).
  const dirty = new Set(dirtyChunks(domainReadDirty(hw, d, 0n, 4n * M2, K4, true).dirty, K4));
  for (const a of written) assert.ok(dirty.has(a), `page 0x${a.toString(16)} not dirty`);
  // The sequence must really exercise every outcome.
  for (const k of ['r:ok', 'w:ok', 'r:not_present', 'w:permission']) assert.ok((outcomes[k] ?? 0) > 10, k);
  assert.ok(written.size > 0);
});

test('forgetful driver: unmap without invalidation is observable', () => {
  let { hw, d } = world(1024);
  hw = domainMap(hw, d, 0n, 0x800000n, M2, RW);
  hw = dma(hw, 'dmar0', 'dev0', 0x1234n, 4n, 'read').hw;
  hw = domainUnmap(hw, d, 0n, M2).hw;
  const r = dma(hw, 'dmar0', 'dev0', 0x1234n, 4n, 'read');
  assert.ok(r.result.ok, 'stale IOTLB entry still translates');
  assert.is(expected(hw, d, 0x1234n, 4n, false).ok, false);
  assert.is(iotlbConsistent(r.hw).length, 1);
});

test.run();

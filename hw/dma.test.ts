// DMA through units: context handling, per-byte translation over several leaves, the
// IOTLB (stale hits until invalidated, FIFO eviction), faults and their log.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EMPTY_HW,
  HwState,
  READ,
  RW,
  addUnit,
  allocDomain,
  dma,
  domainMap,
  domainUnmap,
  domainUnmapSync,
  faultLog,
  freeDomain,
  invalidate,
  iotlbConsistent,
  iotlbContents,
  setContext,
  clearFaults,
  domainRuns,
} from './index.js';

const K4 = 0x1000n;
const M2 = 0x200000n;

function setup(capacity?: number): { hw: HwState; d: number } {
  let hw = addUnit(EMPTY_HW, 'dmar0', 'vtd-sl', capacity ? { iotlbCapacity: capacity } : {});
  const r = allocDomain(hw, 'dmar0', { hugePages: true });
  hw = setContext(r.hw, 'dmar0', 'dev0', { kind: 'domain', domain: r.domain });
  return { hw, d: r.domain };
}

const ok = (x: ReturnType<typeof dma>) => {
  if (!x.result.ok) throw new Error(`fault: ${x.result.reason}`);
  return x.result;
};

test('blocked: absent context, blocked context, blocking domain', () => {
  let { hw } = setup();
  let r = dma(hw, 'dmar0', 'devX', 0n, 4n, 'read');
  assert.equal(r.result.ok ? null : r.result.fault, 'blocked');
  hw = setContext(r.hw, 'dmar0', 'devX', { kind: 'blocked' });
  r = dma(hw, 'dmar0', 'devX', 0n, 4n, 'read');
  assert.equal(r.result.ok ? null : r.result.fault, 'blocked');
  const b = allocDomain(r.hw, 'dmar0', { hugePages: false, kind: 'blocking' });
  hw = setContext(b.hw, 'dmar0', 'devX', { kind: 'domain', domain: b.domain });
  r = dma(hw, 'dmar0', 'devX', 0n, 4n, 'write');
  assert.equal(r.result.ok ? null : r.result.fault, 'blocked');
  assert.equal(faultLog(r.hw, 'dmar0').map((f) => [f.seq, f.fault, f.rid, f.domain]), [
    [0, 'blocked', 'devX', null],
    [1, 'blocked', 'devX', null],
    [2, 'blocked', 'devX', b.domain],
  ]);
  assert.is(faultLog(hw, 'dmar0').length, 2);
  assert.is(faultLog(clearFaults(r.hw, 'dmar0'), 'dmar0').length, 0);
});

test('translates every byte across leaves, coalescing physically contiguous runs', () => {
  let { hw, d } = setup();
  hw = domainMap(hw, d, M2 - 2n * K4, 0x10000n, 2n * K4, RW);
  hw = domainMap(hw, d, M2, 0x12000n, M2, RW); // 4K leaves: pa not 2M aligned
  hw = domainMap(hw, d, 2n * M2, 0x40000000n, M2, READ);
  const r = ok(dma(hw, 'dmar0', 'dev0', M2 - 0x1800n, M2 + 0x2000n, 'read'));
  assert.is(r.pa, 0x10800n);
  assert.equal(r.segments, [
    { iova: M2 - 0x1800n, pa: 0x10800n, length: M2 + 0x1800n },
    { iova: 2n * M2, pa: 0x40000000n, length: 0x800n },
  ]);
  const w = dma(hw, 'dmar0', 'dev0', 2n * M2 - 4n, 8n, 'write');
  assert.equal(w.result, { ok: false, fault: 'permission', iova: 2n * M2, reason: w.result.ok ? '' : w.result.reason });
  const np = dma(hw, 'dmar0', 'dev0', 3n * M2 - 1n, 2n, 'read');
  assert.equal(np.result.ok ? null : [np.result.fault, np.result.iova], ['not_present', 3n * M2]);
  // Fills made before the fault are kept.
  assert.ok(iotlbContents(np.hw, 'dmar0').some((e) => e.pageSize === M2 && e.iova === 2n * M2));
});

test('iova beyond the format reach or past 2^64 is not_present', () => {
  const { hw } = setup();
  let r = dma(hw, 'dmar0', 'dev0', 1n << 48n, 1n, 'read');
  assert.equal(r.result.ok ? null : [r.result.fault, r.result.iova], ['not_present', 1n << 48n]);
  r = dma(hw, 'dmar0', 'dev0', (1n << 64n) - 4n, 8n, 'read');
  assert.equal(r.result.ok ? null : r.result.fault, 'not_present');
  let { hw: h2, d } = setup();
  h2 = domainMap(h2, d, (1n << 48n) - K4, 0n, K4, READ);
  r = dma(h2, 'dmar0', 'dev0', (1n << 48n) - 4n, 1n << 63n, 'read');
  assert.equal(r.result.ok ? null : [r.result.fault, r.result.iova], ['not_present', 1n << 48n]);
});

test('IOTLB: stale hit after unmap until invalidated; a hit returns the same state', () => {
  let { hw, d } = setup();
  hw = domainMap(hw, d, 0x100000n, 0x5000n, K4, RW);
  const first = dma(hw, 'dmar0', 'dev0', 0x100010n, 4n, 'read');
  assert.is(ok(first).pa, 0x5010n);
  assert.is.not(first.hw, hw);
  const again = dma(first.hw, 'dmar0', 'dev0', 0x100020n, 4n, 'write');
  assert.is(again.hw, first.hw);
  assert.equal(iotlbConsistent(again.hw), []);
  const un = domainUnmap(again.hw, d, 0x100000n, K4);
  assert.is(un.unmapped, K4);
  const stale = dma(un.hw, 'dmar0', 'dev0', 0x100010n, 4n, 'read');
  assert.is(ok(stale).pa, 0x5010n);
  assert.equal(iotlbConsistent(stale.hw).map((x) => x.reason), ['unmapped']);
  // Range invalidation of another range keeps it; of this range removes it.
  let inv = invalidate(stale.hw, 'dmar0', { domain: d, iova: 0x200000n, length: K4 });
  assert.is(inv, stale.hw);
  inv = invalidate(stale.hw, 'dmar0', { domain: d, iova: 0x100800n, length: 1n });
  const miss = dma(inv, 'dmar0', 'dev0', 0x100010n, 4n, 'read');
  assert.equal(miss.result.ok ? null : miss.result.fault, 'not_present');
  assert.equal(iotlbConsistent(miss.hw), []);
  // A remap with another pa: stale until a domain-wide invalidation.
  const re = domainMap(miss.hw, d, 0x100000n, 0x9000n, K4, READ);
  const re1 = dma(re, 'dmar0', 'dev0', 0x100000n, 1n, 'read');
  assert.is(ok(re1).pa, 0x9000n);
  const re2 = domainMap(domainUnmap(re1.hw, d, 0x100000n, K4).hw, d, 0x100000n, 0xa000n, K4, READ);
  assert.equal(iotlbConsistent(re2).map((x) => x.reason), ['changed']);
  assert.is(ok(dma(re2, 'dmar0', 'dev0', 0x100000n, 1n, 'read')).pa, 0x9000n);
  const re3 = invalidate(re2, 'dmar0', { domain: d });
  assert.is(ok(dma(re3, 'dmar0', 'dev0', 0x100000n, 1n, 'read')).pa, 0xa000n);
});

test('IOTLB entries are tagged by domain; freed domains show up as inconsistent', () => {
  let { hw, d } = setup();
  hw = domainMap(hw, d, 0n, 0x1000n, K4, READ);
  const r2 = allocDomain(hw, 'dmar0', { hugePages: true });
  const d2 = r2.domain;
  hw = domainMap(r2.hw, d2, 0n, 0x7000n, K4, READ);
  hw = dma(hw, 'dmar0', 'dev0', 0n, 1n, 'read').hw;
  hw = setContext(hw, 'dmar0', 'dev0', { kind: 'domain', domain: d2 });
  assert.is(ok(dma(hw, 'dmar0', 'dev0', 0n, 1n, 'read')).pa, 0x7000n);
  assert.throws(() => freeDomain(hw, d2), /still used/);
  hw = freeDomain(hw, d);
  assert.equal(iotlbConsistent(hw).map((x) => [x.domain, x.reason]), [[d, 'freed']]);
  hw = invalidate(hw, 'dmar0', { domain: d });
  assert.equal(iotlbConsistent(hw), []);
  assert.is(allocDomain(hw, 'dmar0', { hugePages: true }).domain, d2 + 1);
});

test('IOTLB: bounded capacity, FIFO eviction, full invalidation', () => {
  let { hw, d } = setup(4);
  hw = domainMap(hw, d, 0n, 0x100000n, 8n * K4, RW);
  for (let i = 0n; i < 6n; i++) hw = dma(hw, 'dmar0', 'dev0', i * K4, 1n, 'read').hw;
  assert.equal(iotlbContents(hw, 'dmar0').map((e) => e.iova), [2n * K4, 3n * K4, 4n * K4, 5n * K4]);
  // A hit does not refresh FIFO order: the next fill evicts 2*K4.
  hw = dma(hw, 'dmar0', 'dev0', 2n * K4, 1n, 'read').hw;
  hw = dma(hw, 'dmar0', 'dev0', 7n * K4, 1n, 'read').hw;
  assert.equal(iotlbContents(hw, 'dmar0').map((e) => e.iova), [3n * K4, 4n * K4, 5n * K4, 7n * K4]);
  // Holes left by invalidation are skipped by eviction.
  hw = invalidate(hw, 'dmar0', { domain: d, iova: 4n * K4, length: K4 });
  hw = dma(hw, 'dmar0', 'dev0', 0n, 1n, 'read').hw;
  hw = dma(hw, 'dmar0', 'dev0', K4, 1n, 'read').hw;
  assert.equal(iotlbContents(hw, 'dmar0').map((e) => e.iova), [0n, K4, 5n * K4, 7n * K4]);
  hw = invalidate(hw, 'dmar0');
  assert.equal(iotlbContents(hw, 'dmar0'), []);
  assert.throws(() => invalidate(hw, 'dmar0', { iova: 0n }), /domain/);
});

test('without dirty tracking a DMA never writes a page table: fills, evictions and faults change only the unit', () => {
  let { hw, d } = setup(2);
  hw = domainMap(hw, d, 0n, 0x100000n, 8n * K4, RW);
  hw = domainMap(hw, d, M2, 0x400000n, M2, READ);
  const domains = hw.domains;
  const older: [HwState, string][] = [];
  const show = (h: HwState) => JSON.stringify(iotlbContents(h, 'dmar0'), (_, v) => (typeof v === 'bigint' ? v.toString(16) : v));
  for (const [iova, dir] of [[0n, 'write'], [K4, 'read'], [2n * K4 + 8n, 'write'], [M2 + 3n, 'write'], [0x10000000n, 'read'], [K4, 'write']] as const) {
    older.push([hw, show(hw)]);
    hw = dma(hw, 'dmar0', 'dev0', iova, 16n, dir).hw;
    assert.is(hw.domains, domains);
  }
  assert.is(faultLog(hw, 'dmar0').length, 2);
  // Every older state still shows the IOTLB it had.
  for (const [h, want] of older) assert.is(show(h), want);
});

test('a multi-page DMA larger than the IOTLB still translates every byte', () => {
  let { hw, d } = setup(2);
  hw = domainMap(hw, d, 0n, 0x100000n, 16n * K4, RW);
  const r = dma(hw, 'dmar0', 'dev0', 0n, 16n * K4, 'write');
  assert.equal(ok(r).segments, [{ iova: 0n, pa: 0x100000n, length: 16n * K4 }]);
  assert.is(iotlbContents(r.hw, 'dmar0').length, 2);
  assert.equal(domainRuns(r.hw, d), [{ iova: 0n, pa: 0x100000n, length: 16n * K4, prot: RW }]);
});

test('mock unit: 2 KiB granule, 1 MiB huge leaf cached once', () => {
  let hw = addUnit(EMPTY_HW, 'mock0', 'mock');
  const a = allocDomain(hw, 'mock0', { hugePages: true });
  hw = setContext(a.hw, 'mock0', 'mdev', { kind: 'domain', domain: a.domain });
  hw = domainMap(hw, a.domain, 0x1000000n, 0x200000n, 0x100800n, RW);
  const r = dma(hw, 'mock0', 'mdev', 0x10ffc00n, 0x800n, 'read');
  assert.equal(ok(r).segments, [{ iova: 0x10ffc00n, pa: 0x2ffc00n, length: 0x800n }]);
  assert.equal(iotlbContents(r.hw, 'mock0').map((e) => e.pageSize), [0x100000n, 0x800n]);
  const w = dma(r.hw, 'mock0', 'mdev', 0x1100800n, 1n, 'write');
  assert.equal(w.result.ok ? null : [w.result.fault, w.result.iova], ['not_present', 0x1100800n]);
});

test('IOTLB: superpage entries; a range invalidation inside one drops the whole entry', () => {
  let { hw, d } = setup();
  hw = domainMap(hw, d, 0x40000000n, 0x80000000n, 0x40000000n, RW); // one 1 GiB leaf
  hw = domainMap(hw, d, M2, 0x400000n, M2, RW); // one 2 MiB leaf
  hw = domainMap(hw, d, 0n, 0x9000n, K4, RW);
  for (const a of [0x40000000n + 0x12345n, M2 + 5n, 6n]) hw = dma(hw, 'dmar0', 'dev0', a, 1n, 'read').hw;
  assert.equal(iotlbContents(hw, 'dmar0').map((e) => [e.iova, e.pageSize]), [
    [0n, K4],
    [M2, M2],
    [0x40000000n, 0x40000000n],
  ]);
  // A hit anywhere inside the 1 GiB entry reuses it.
  const h = dma(hw, 'dmar0', 'dev0', 0x7fffff00n, 0x100n, 'write');
  assert.is(h.hw, hw);
  assert.is(ok(h).pa, 0xbfffff00n);
  hw = invalidate(hw, 'dmar0', { domain: d, iova: 0x50000000n, length: K4 });
  hw = invalidate(hw, 'dmar0', { domain: d + 1, iova: 0n, length: 1n << 48n }); // other domain: no-op
  assert.equal(iotlbContents(hw, 'dmar0').map((e) => e.pageSize), [K4, M2]);
});

test('domainUnmapSync equals domainUnmap then a range invalidation, usual ranges or not', () => {
  let { hw, d } = setup();
  hw = domainMap(hw, d, M2, 0x400000n, M2, RW); // one 2 MiB leaf
  hw = domainMap(hw, d, 0x400000n, 0x9000n, 4n * K4, RW);
  for (const a of [M2 + 5n, 0x400000n, 0x402000n]) hw = dma(hw, 'dmar0', 'dev0', a, 1n, 'read').hw;
  const cases: [bigint, bigint][] = [
    [0x400000n, 2n * K4], // usual: leaves and IOTLB entries go
    [M2 + K4, K4], // splits the 2 MiB leaf; its IOTLB entry goes whole
    [0x800000n, K4], // nothing mapped: same state
    [0xfffffffff000n, 1n << 20n], // past the 48-bit reach: the checked path
    [1n << 60n, K4],
  ];
  for (const [iova, length] of cases) {
    const two = domainUnmap(hw, d, iova, length);
    const one = domainUnmapSync(hw, 'dmar0', d, iova, length);
    assert.is(one.unmapped, two.unmapped);
    assert.equal(domainRuns(one.hw, d), domainRuns(two.hw, d));
    assert.equal(iotlbContents(one.hw, 'dmar0'), iotlbContents(invalidate(two.hw, 'dmar0', { domain: d, iova, length }), 'dmar0'));
  }
  assert.is(domainUnmapSync(hw, 'dmar0', d, 0x800000n, K4).hw, hw);
});

test.run();

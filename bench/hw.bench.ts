// Benchmark of hw/: warm-IOTLB single-page DMA checks per second (target >= 2,000,000/s),
// plus cold-miss DMAs and map/unmap of 1 TiB. Timing lives here only, never in tests.
// Run: npx tsc -p tsconfig.json && node dist/bench/hw.bench.js

import { EMPTY_HW, HwState, RW, addUnit, allocDomain, dma, domainMap, domainUnmap, invalidate, setContext } from '../hw/index.js';

function rate(label: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(n, 200_000); i++) fn(i); // warm-up (JIT)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${label.padEnd(48)} ${Math.round(n / s).toLocaleString('en-US').padStart(12)} /s`);
}

let hw: HwState = addUnit(EMPTY_HW, 'dmar0', 'vtd-sl');
const a = allocDomain(hw, 'dmar0', { hugePages: false });
hw = setContext(a.hw, 'dmar0', 'dev0', { kind: 'domain', domain: a.domain });
const PAGES = 512;
hw = domainMap(hw, a.domain, 0x100000000n, 0x200000000n, BigInt(PAGES) * 0x1000n, RW);
const iovas = Array.from({ length: PAGES }, (_, i) => 0x100000000n + BigInt(i) * 0x1000n + 0x10n);
for (const iova of iovas) hw = dma(hw, 'dmar0', 'dev0', iova, 64n, 'read').hw;
const warm = hw;

let sink = 0;
rate('warm IOTLB, 1-page DMA read (512 pages)', 4_000_000, (i) => {
  const r = dma(warm, 'dmar0', 'dev0', iovas[i & (PAGES - 1)]!, 64n, 'read');
  if (r.hw !== warm || !r.result.ok) throw new Error('not a hit');
  sink += r.result.segments.length;
});
rate('warm IOTLB, 1-page DMA write (no dirty tracking)', 4_000_000, (i) => {
  const r = dma(warm, 'dmar0', 'dev0', iovas[i & (PAGES - 1)]!, 64n, 'write');
  if (r.hw !== warm) throw new Error('not a hit');
});
const cold = invalidate(warm, 'dmar0');
rate('cold IOTLB, 1-page DMA miss (walk + fill)', 400_000, (i) => {
  sink += dma(cold, 'dmar0', 'dev0', iovas[i & (PAGES - 1)]!, 64n, 'read').hw.nextDomain;
});
rate('2 MiB DMA over 512 4K leaves, warm', 20_000, () => {
  sink += dma(warm, 'dmar0', 'dev0', 0x100000000n, 0x200000n, 'read').hw.nextDomain;
});

const h = allocDomain(warm, 'dmar0', { hugePages: true });
rate('map 1 TiB (1 GiB leaves) + unmap all', 2_000, () => {
  const m = domainMap(h.hw, h.domain, 1n << 40n, 1n << 41n, 1n << 40n, RW);
  sink += Number(domainUnmap(m, h.domain, 0n, 1n << 48n).unmapped >> 40n);
});
rate('map 2 MiB as 512 4K leaves (misaligned pa)', 20_000, () => {
  sink += domainMap(h.hw, h.domain, 0x200000n, 0x1000n, 0x200000n, RW).nextDomain;
});
if (sink === 42) console.log('');

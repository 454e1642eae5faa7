// Shared by hw's seeded tests (not part of the hw API): a tiny deterministic PRNG, and the
// page-table formats the random table tests run over with addresses that make huge leaves.
import { ARM_LPAE_S2, MOCK, VTD_SL, type PtFormat } from './format.js';

/** Linear congruential generator; each call returns an integer in [0, n). */
export function lcg(seed: number): (n: number) => number {
  let x = seed >>> 0;
  return (n) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x >>> 8) % n;
  };
}

/** Format, allowed page sizes, and its granule / middle / big leaf sizes. */
export const PT_CASES: [PtFormat, bigint, bigint[]][] = [
  [VTD_SL, VTD_SL.pageSizes, [0x1000n, 0x200000n, 0x40000000n]],
  [ARM_LPAE_S2, 0x1000n | 0x200000n, [0x1000n, 0x200000n, 0x40000000n]],
  [MOCK, MOCK.pageSizes, [0x800n, 0x100000n, 0x20000000n]],
];

/** Addresses clustered around a few big-unit boundaries, so huge leaves form and split. */
export function clusteredAddr(rnd: (n: number) => number, units: readonly bigint[]): () => bigint {
  const [g, mid, big] = units as [bigint, bigint, bigint];
  return () => BigInt(1 + rnd(3)) * big + BigInt(rnd(5) - 2) * mid + BigInt(rnd(9) - 4) * g;
}

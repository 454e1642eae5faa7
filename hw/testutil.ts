// Shared by hw's seeded tests (not part of the hw API): a tiny deterministic PRNG.

/** Linear congruential generator; each call returns an integer in [0, n). */
export function lcg(seed: number): (n: number) => number {
  let x = seed >>> 0;
  return (n) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x >>> 8) % n;
  };
}

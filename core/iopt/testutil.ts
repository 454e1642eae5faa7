/*
 * Test-only helpers: a seeded PRNG (tests must be reproducible) and brute-force
 * oracles over small address spaces to compare the trees against.
 */

/** xorshift32; deterministic for a given seed. */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** Union coverage of closed ranges, as a boolean array over [0, size). */
export function coverage(ranges: Iterable<{ start: bigint; last: bigint }>, size: number): boolean[] {
  const c = new Array<boolean>(size).fill(false);
  for (const r of ranges) for (let i = Number(r.start); i <= Number(r.last) && i < size; i++) c[i] = true;
  return c;
}

/** Maximal runs of `want` in a coverage array, as closed ranges. */
export function runs(c: boolean[], want: boolean): { start: bigint; last: bigint }[] {
  const out: { start: bigint; last: bigint }[] = [];
  for (let i = 0; i < c.length; ) {
    if (c[i] !== want) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < c.length && c[j + 1] === want) j++;
    out.push({ start: BigInt(i), last: BigInt(j) });
    i = j + 1;
  }
  return out;
}

/*
 * u64 arithmetic for IOVA code. Addresses are bigint in [0, 2^64-1]; `last` is
 * inclusive and `end` exclusive, so an end may be exactly 2^64 (U64_LIMIT) and
 * must never be fed back as an address. Helpers that imitate the kernel's
 * `unsigned long` wrap-around say so in their name; the rest are exact.
 */

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** 2^64: the exclusive end of the address space. Not itself an address. */
export const U64_LIMIT = 1n << 64n;
/** The kernel's ULONG_MAX / 2 (integer division): 2^63 - 1. */
export const ULONG_MAX_HALF = U64_MAX / 2n;
export const PAGE_SIZE_4K = 4096n;
export const HPAGE_SIZE_2M = 2n << 20n;

export function isU64(x: unknown): x is bigint {
  return typeof x === 'bigint' && x >= 0n && x <= U64_MAX;
}

export function isPow2(x: bigint): boolean {
  return x > 0n && (x & (x - 1n)) === 0n;
}

/** Throws on a malformed closed range: that is a caller bug, not a user error. */
export function assertRange(start: bigint, last: bigint, what: string): void {
  if (!isU64(start) || !isU64(last) || start > last) {
    throw new RangeError(`${what}: bad range [${String(start)}, ${String(last)}]`);
  }
}

/** roundup_pow_of_two for 1 <= x <= 2^63. */
export function roundupPow2(x: bigint): bigint {
  if (x <= 1n) return 1n;
  if (isPow2(x)) return x;
  return 1n << BigInt((x - 1n).toString(2).length);
}

/** 1 << __ffs64(x) for x != 0: the natural alignment of x. */
export function lowestSetBit(x: bigint): bigint {
  return x & -x;
}

/**
 * The kernel's ALIGN(x, a) on unsigned long: rounds up and silently wraps past
 * 2^64. `wrapped` tells the caller that the C code would have gone back to a
 * small address, which the allocator must reproduce, not hide.
 */
export function alignUpWrapping(x: bigint, a: bigint): { value: bigint; wrapped: boolean } {
  const raw = (x + a - 1n) & ~(a - 1n);
  return raw > U64_MAX ? { value: raw - U64_LIMIT, wrapped: true } : { value: raw, wrapped: false };
}

export function hex(x: bigint): string {
  return '0x' + x.toString(16);
}

export function fmtRange(start: bigint, last: bigint): string {
  return `[${hex(start)}, ${hex(last)}]`;
}

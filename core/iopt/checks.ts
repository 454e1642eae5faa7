/*
 * Pure checks the ioctl handlers run before changing an IOAS (validate first,
 * then mutate): FIXED_IOVA placement (iopt_check_iova, reference §3.6 step 9),
 * the UNMAP walk (iopt_unmap_iova_range, §5.7) and the alignment rule applied
 * when iova_alignment rises (iopt_check_iova_alignment, EADDRINUSE, §5.2).
 * They keep invariants 11, 13 and 14 by refusing, never by repairing: nothing
 * here returns a new map.
 */

import type { IntervalEntry, IntervalMap } from './interval-map.js';
import type { ReservedMap } from './reserved-map.js';
import type { IoptFail } from './result.js';
import { fmtRange, hex, U64_MAX } from './u64.js';

export type FixedResult = { readonly ok: true; readonly last: bigint } | IoptFail<'EINVAL' | 'EOVERFLOW' | 'EEXIST'>;

/**
 * Kernel order: iova alignment (EINVAL), iova + length - 1 overflow
 * (EOVERFLOW), any reserved range (EINVAL, so a range hitting both reserved
 * and an area reports EINVAL), any area (EEXIST). length - 1 is computed as
 * unsigned long, as in the kernel; MAP rejects length 0 before getting here.
 */
export function checkFixed(
  areas: IntervalMap<unknown>,
  reserved: ReservedMap,
  iova: bigint,
  length: bigint,
  iovaAlignment: bigint,
): FixedResult {
  if ((iova & (iovaAlignment - 1n)) !== 0n) {
    return { ok: false, errno: 'EINVAL', reason: `iova ${hex(iova)} not aligned to ${hex(iovaAlignment)}` };
  }
  const last = iova + BigInt.asUintN(64, length - 1n);
  if (last > U64_MAX) {
    return { ok: false, errno: 'EOVERFLOW', reason: `iova ${hex(iova)} + length ${hex(length)} overflows` };
  }
  const r = reserved.intersects(iova, last);
  if (r !== undefined) {
    return {
      ok: false,
      errno: 'EINVAL',
      reason: `${fmtRange(iova, last)} hits reserved ${fmtRange(r.start, r.last)} of ${r.owner}`,
    };
  }
  const a = areas.firstIntersecting(iova, last);
  if (a !== undefined) {
    return {
      ok: false,
      errno: 'EEXIST',
      reason: `${fmtRange(iova, last)} overlaps mapped area ${fmtRange(a.start, a.last)}`,
    };
  }
  return { ok: true, last };
}

export interface UnmapPlan<V> {
  /** Whole areas inside the range, lowest first, that precede any failure. */
  readonly inside: readonly IntervalEntry<V>[];
  /** Sum of their lengths (the kernel's `unmapped`). */
  readonly bytes: bigint;
  /** Why the walk stopped early; the areas in `inside` are still removed. */
  readonly stop?: {
    readonly errno: 'EBUSY' | 'ENOENT';
    readonly entry: IntervalEntry<V>;
    readonly reason: string;
  };
  /** Nothing intersects [start, last]: native UNMAP's ENOENT (not for unmap-all). */
  readonly empty: boolean;
}

/**
 * Walks the areas intersecting [start, last] lowest first, as the kernel does.
 * For each area: `isBusy` (area under construction, or locked) gives EBUSY;
 * an area not wholly inside gives ENOENT. Both stop the walk, but the kernel
 * has already unmapped everything before it, so the caller must remove
 * `inside` and still report the error. Access notification and retry are the
 * caller's, since they depend on area state this module does not know.
 */
export function planUnmap<V>(
  areas: IntervalMap<V>,
  start: bigint,
  last: bigint,
  isBusy?: (v: V) => boolean,
): UnmapPlan<V> {
  const inside: IntervalEntry<V>[] = [];
  let bytes = 0n;
  for (const e of areas.intersecting(start, last)) {
    if (isBusy?.(e.value) === true) {
      return { inside, bytes, empty: false, stop: { errno: 'EBUSY', entry: e, reason: `area ${fmtRange(e.start, e.last)} is busy` } };
    }
    if (e.start < start || e.last > last) {
      const reason = `area ${fmtRange(e.start, e.last)} crosses the unmap range ${fmtRange(start, last)}`;
      return { inside, bytes, empty: false, stop: { errno: 'ENOENT', entry: e, reason } };
    }
    inside.push(e);
    bytes += e.last - e.start + 1n;
  }
  return { inside, bytes, empty: inside.length === 0 };
}

export interface AlignmentViolation<V> {
  readonly entry: IntervalEntry<V>;
  readonly field: 'iova' | 'length' | 'pageOffset';
  readonly reason: string;
}

/**
 * The first area (lowest IOVA) whose iova, length or page_offset is not a
 * multiple of `newAlign` (a power of two), or undefined. A hit means raising
 * iova_alignment must fail with EADDRINUSE. O(n): the kernel scans all areas too.
 */
export function alignmentCheck<V>(
  areas: IntervalMap<V>,
  newAlign: bigint,
  pageOffsetOf: (v: V) => bigint,
): AlignmentViolation<V> | undefined {
  const mask = newAlign - 1n;
  for (const e of areas.entries()) {
    const len = e.last - e.start + 1n;
    const field =
      (e.start & mask) !== 0n ? 'iova' : (len & mask) !== 0n ? 'length' : (pageOffsetOf(e.value) & mask) !== 0n ? 'pageOffset' : undefined;
    if (field !== undefined) {
      return { entry: e, field, reason: `area ${fmtRange(e.start, e.last)}: ${field} not a multiple of ${hex(newAlign)}` };
    }
  }
  return undefined;
}

/*
 * Pure checks the ioctl handlers run before changing an IOAS (validate first,
 * then mutate): FIXED_IOVA placement (iopt_check_iova, reference §3.6 step 9),
 * the UNMAP walk (iopt_unmap_iova_range, §5.7) and the alignment rule applied
 * when iova_alignment rises (iopt_check_iova_alignment, EADDRINUSE, §5.2),
 * plus the reservation and ALLOW_IOVAS preconditions (§3.3, §5.3).
 * They keep invariants 11-14 by refusing, never by repairing: no input map
 * is changed (buildAllowed only builds the replacement allowed list).
 */

import { IntervalMap, type IntervalEntry } from './interval-map.js';
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
  // The hits array becomes `inside` itself when the walk does not stop (the usual case).
  const hits = areas.intersecting(start, last);
  let bytes = 0n;
  for (let i = 0; i < hits.length; i++) {
    const e = hits[i]!;
    if (isBusy?.(e.value) === true) {
      const inside = hits.slice(0, i);
      return { inside, bytes, empty: false, stop: { errno: 'EBUSY', entry: e, reason: `area ${fmtRange(e.start, e.last)} is busy` } };
    }
    if (e.start < start || e.last > last) {
      const reason = `area ${fmtRange(e.start, e.last)} crosses the unmap range ${fmtRange(start, last)}`;
      return { inside: hits.slice(0, i), bytes, empty: false, stop: { errno: 'ENOENT', entry: e, reason } };
    }
    bytes += e.last - e.start + 1n;
  }
  return { inside: hits, bytes, empty: hits.length === 0 };
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

/**
 * iopt_reserve_iova's precondition: a new reservation may touch neither an
 * area nor an allowed range (EADDRINUSE; invariants 11 and 12). Reserved vs
 * reserved is never checked.
 */
export function checkReserve(
  areas: IntervalMap<unknown>,
  allowed: IntervalMap<unknown>,
  start: bigint,
  last: bigint,
): { readonly ok: true } | IoptFail<'EADDRINUSE'> {
  const a = areas.firstIntersecting(start, last);
  if (a !== undefined) {
    return { ok: false, errno: 'EADDRINUSE', reason: `${fmtRange(start, last)} overlaps mapped area ${fmtRange(a.start, a.last)}` };
  }
  const w = allowed.firstIntersecting(start, last);
  if (w !== undefined) {
    return { ok: false, errno: 'EADDRINUSE', reason: `${fmtRange(start, last)} overlaps allowed range ${fmtRange(w.start, w.last)}` };
  }
  return { ok: true };
}

/**
 * IOMMU_IOAS_ALLOW_IOVAS: builds the replacement allowed list in user order.
 * EINVAL for start >= last (single-byte ranges too) or an overlap within the
 * list; then EADDRINUSE if any range touches a reserved range (checked in
 * ascending order, as iopt_set_allow_iova walks the new tree). An empty list
 * clears the restriction.
 */
export function buildAllowed(
  reserved: ReservedMap,
  ranges: readonly { readonly start: bigint; readonly last: bigint }[],
): { readonly ok: true; readonly allowed: IntervalMap<null> } | IoptFail<'EINVAL' | 'EADDRINUSE'> {
  let allowed = IntervalMap.empty<null>();
  for (const r of ranges) {
    if (r.start >= r.last || r.last > U64_MAX || r.start < 0n) {
      return { ok: false, errno: 'EINVAL', reason: `allowed range ${fmtRange(r.start, r.last)} has start >= last` };
    }
    const o = allowed.firstIntersecting(r.start, r.last);
    if (o !== undefined) {
      return { ok: false, errno: 'EINVAL', reason: `allowed ${fmtRange(r.start, r.last)} overlaps ${fmtRange(o.start, o.last)}` };
    }
    allowed = allowed.insert(r.start, r.last, null);
  }
  for (const a of allowed.entries()) {
    const hit = reserved.intersects(a.start, a.last);
    if (hit !== undefined) {
      const reason = `allowed ${fmtRange(a.start, a.last)} hits reserved ${fmtRange(hit.start, hit.last)} of ${hit.owner}`;
      return { ok: false, errno: 'EADDRINUSE', reason };
    }
  }
  return { ok: true, allowed };
}

/*
 * allocIova: the kernel's automatic IOVA choice for MAP/COPY without
 * FIXED_IOVA (io_pagetable.c iopt_alloc_iova, reference §5.5), reproduced
 * step for step including its unsigned-long arithmetic:
 *
 *  1. length == 0 or length >= ULONG_MAX/2 (= 2^63-1)       -> EOVERFLOW
 *  2. align = roundup_pow_of_two(length), limited to 1 << ctz(addr) when
 *     addr != 0, then set to maxAlignment if >= it (HPAGE with THP)
 *  3. align < IOAS iova_alignment                            -> EINVAL
 *  4. spans = merged allowed ranges clipped to [PAGE, 2^64-1-PAGE], or that
 *     whole interval when the allowed list is empty. A span must hold length
 *     bytes, then its start becomes ALIGN(start, align) | page_offset, and it
 *     must still hold them. (Touching allowed ranges merge into one span.)
 *  5. first fit, ascending, over the holes of (reserved U areas) inside
 *     [that start, span last]: candidate = ALIGN(hole start, align) |
 *     page_offset; the hole must hold length bytes both before and after.
 *  6. nothing fits                                            -> ENOSPC
 *
 * `| page_offset` (not `+`) is the kernel's: with addr != 0, page_offset is a
 * multiple of align, so it only sets bits at or above align, and the result
 * keeps the sub-page offset only where those bits were clear after ALIGN.
 *
 * ALIGN can wrap past 2^64 for a start within maxAlignment of the top. The
 * kernel does not catch it: at step 4 it then searches from page_offset
 * (outside the allowed list, possibly IOVA 0); at step 5 it proposes an
 * address below the hole, which CONFIG_IOMMUFD_TEST kernels re-check with
 * iopt_check_iova and refuse with EINVAL (WARN). We model the test kernel and
 * flag every wrapped success with quirk 'align-wrap' (it can break
 * invariant 26). Cost: O((spans + holes visited) * log n), never bytes.
 */

import type { Coverage, IntervalMap } from './interval-map.js';
import type { ReservedMap } from './reserved-map.js';
import type { IoptFail } from './result.js';
import { checkFixed } from './checks.js';
import {
  alignUpWrapping,
  hex,
  HPAGE_SIZE_2M,
  lowestSetBit,
  PAGE_SIZE_4K,
  roundupPow2,
  U64_LIMIT,
  U64_MAX,
  ULONG_MAX_HALF,
} from './u64.js';

export interface AllocParams {
  readonly areas: IntervalMap<unknown>;
  readonly reserved: ReservedMap;
  /** The IOAS allowed list; empty means "no restriction". */
  readonly allowed: IntervalMap<unknown>;
  readonly length: bigint;
  /** User VA, file start offset, or COPY source address. */
  readonly addr: bigint;
  /** The IOAS's iova_alignment (power of two, <= pageSize). */
  readonly iovaAlignment: bigint;
  /** Host PAGE_SIZE; default 4096. */
  readonly pageSize?: bigint;
  /** HPAGE_SIZE with THP (default 2 MiB), PAGE_SIZE without. */
  readonly maxAlignment?: bigint;
}

export type AllocResult =
  | { readonly ok: true; readonly iova: bigint; readonly alignment: bigint; readonly quirk?: 'align-wrap' }
  | IoptFail<'EINVAL' | 'ENOSPC' | 'EOVERFLOW'>;

/** The alignment iopt_alloc_iova will demand (steps 1-2); undefined = EOVERFLOW. */
export function allocAlignment(length: bigint, addr: bigint, maxAlignment: bigint): bigint | undefined {
  if (length === 0n || length >= ULONG_MAX_HALF) return undefined;
  let align = roundupPow2(length);
  if (addr !== 0n) {
    const natural = lowestSetBit(addr);
    if (natural < align) align = natural;
  }
  return align >= maxAlignment ? maxAlignment : align;
}

export function allocIova(p: AllocParams): AllocResult {
  const pageSize = p.pageSize ?? PAGE_SIZE_4K;
  const maxAlignment = p.maxAlignment ?? HPAGE_SIZE_2M;
  const { length, addr } = p;
  const align = allocAlignment(length, addr, maxAlignment);
  if (align === undefined) {
    return { ok: false, errno: 'EOVERFLOW', reason: `length ${hex(length)} is 0 or >= ULONG_MAX/2` };
  }
  if (align < p.iovaAlignment) {
    return {
      ok: false,
      errno: 'EINVAL',
      reason: `allocation alignment ${hex(align)} < IOAS iova_alignment ${hex(p.iovaAlignment)}`,
    };
  }
  const pageOffset = addr % pageSize;
  const need = length - 1n;
  const lo = pageSize;
  const hi = U64_MAX - pageSize;

  const trySpan = (spanStart: bigint, spanLast: bigint): AllocResult | undefined => {
    if (spanLast - spanStart < need) return undefined;
    const a = alignUpWrapping(spanStart, align);
    const from = a.value | pageOffset;
    if (from > spanLast || spanLast - from < need) return undefined;
    const hit = firstFitInSpan(p.areas, p.reserved, from, spanLast, need, align, pageOffset);
    if (hit === undefined) return undefined;
    if (hit.wrapped) {
      // CONFIG_IOMMUFD_TEST: WARN_ON(iopt_check_iova(...)) -> -EINVAL.
      const chk = checkFixed(p.areas, p.reserved, hit.iova, length, p.iovaAlignment);
      if (!chk.ok) {
        return { ok: false, errno: 'EINVAL', reason: `ALIGN() wrapped to ${hex(hit.iova)}: ${chk.reason}` };
      }
    }
    return hit.wrapped || a.wrapped
      ? { ok: true, iova: hit.iova, alignment: align, quirk: 'align-wrap' }
      : { ok: true, iova: hit.iova, alignment: align };
  };

  if (p.allowed.size === 0) {
    return trySpan(lo, hi) ?? noSpace(length, align);
  }
  let pos = lo;
  for (;;) {
    const s = p.allowed.nextCovered(pos);
    if (s === undefined || s > hi) break;
    const end = p.allowed.firstUncovered(s);
    const r = trySpan(s, end - 1n < hi ? end - 1n : hi);
    if (r !== undefined) return r;
    if (end > hi) break;
    pos = end;
  }
  return noSpace(length, align);
}

function noSpace(length: bigint, align: bigint): AllocResult {
  return {
    ok: false,
    errno: 'ENOSPC',
    reason: `no free IOVA hole fits length ${hex(length)} at alignment ${hex(align)}`,
  };
}

/** Smallest x >= pos covered by neither set (2^64 if none). */
export function firstFree(a: Coverage, b: Coverage, pos: bigint): bigint {
  for (;;) {
    const x = b.firstUncovered(a.firstUncovered(pos));
    if (x === pos) return x;
    pos = x;
  }
}

/** The free holes of (a U b) inside [from, last], ascending. */
export function* holesBetween(a: Coverage, b: Coverage, from: bigint, last: bigint): Generator<{ start: bigint; last: bigint }> {
  let pos = from;
  while (pos <= last) {
    const start = firstFree(a, b, pos);
    if (start > last) return;
    const na = a.nextCovered(start) ?? U64_LIMIT;
    const nb = b.nextCovered(start) ?? U64_LIMIT;
    const next = na < nb ? na : nb;
    yield { start, last: next - 1n < last ? next - 1n : last };
    pos = next;
  }
}

function firstFitInSpan(
  areas: Coverage,
  reserved: Coverage,
  from: bigint,
  spanLast: bigint,
  need: bigint,
  align: bigint,
  pageOffset: bigint,
): { iova: bigint; wrapped: boolean } | undefined {
  for (const h of holesBetween(reserved, areas, from, spanLast)) {
    if (h.last - h.start < need) continue;
    const a = alignUpWrapping(h.start, align);
    const iova = a.value | pageOffset;
    if (iova > h.last || h.last - iova < need) continue;
    return { iova, wrapped: a.wrapped };
  }
  return undefined;
}

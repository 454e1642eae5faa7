/*
 * Public API of the persistent IOVA-space structures of one IOAS: the area
 * map and allowed list (IntervalMap), the reserved ranges (ReservedMap), the
 * kernel's automatic IOVA allocator, and the pure MAP/UNMAP/alignment checks.
 * All maps are immutable values: updates return new versions in O(log n).
 */

export { IntervalMap, type IntervalEntry, type IovaRange, type Coverage } from './interval-map.js';
export { ReservedMap, type ReservedRange } from './reserved-map.js';
export { allocIova, allocAlignment, holesBetween, firstFree, type AllocParams, type AllocResult } from './alloc.js';
export {
  checkFixed,
  planUnmap,
  alignmentCheck,
  checkReserve,
  buildAllowed,
  type FixedResult,
  type UnmapPlan,
  type AlignmentViolation,
} from './checks.js';
export type { IoptFail } from './result.js';
export {
  U64_MAX,
  U64_LIMIT,
  ULONG_MAX_HALF,
  PAGE_SIZE_4K,
  HPAGE_SIZE_2M,
  isU64,
  isPow2,
  roundupPow2,
  alignUpWrapping,
  hex,
  fmtRange,
} from './u64.js';

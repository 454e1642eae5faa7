/*
 * ioasData.ts: the io_pagetable of an IOAS: which HWPT domains and accesses use it,
 * its IOVA alignment, the huge-page option, and the persistent IOVA maps: areas,
 * reserved ranges (by owner) and the allowed list.
 *
 * Invariant: `hwpts` lists the HWPT_PAGING objects whose domain is in this IOAS, in
 * creation order (automatic domain selection tries them in that order).
 */
import { IntervalMap, ReservedMap } from './iopt/index.js';

/** One mapped IOVA range: [iova, iova+length) backed by bytes [pageOffset, +length) of a pages object. */
export interface Area {
  readonly pages: number;
  /** Byte offset of the area's first byte from the pages object's first (page-aligned) address. */
  readonly pageOffset: bigint;
  /** IOMMU_READ=1 | IOMMU_WRITE=2. */
  readonly prot: number;
}

export interface IoasData {
  readonly areas: IntervalMap<Area>;
  readonly reserved: ReservedMap;
  /** The allowed list (ALLOW_IOVAS); empty = no restriction. */
  readonly allowed: IntervalMap<null>;
  readonly hwpts: readonly number[];
  readonly accesses: readonly number[];
  /** iopt->iova_alignment: 1 for a fresh IOAS, at most PAGE_SIZE. */
  readonly iovaAlignment: bigint;
  /** IOMMU_OPTION_HUGE_PAGES (1 = large IOPTEs allowed). */
  readonly hugePages: boolean;
}

export function emptyIoasData(): IoasData {
  return { areas: IntervalMap.empty(), reserved: ReservedMap.empty(), allowed: IntervalMap.empty(), hwpts: [], accesses: [], iovaAlignment: 1n, hugePages: true };
}

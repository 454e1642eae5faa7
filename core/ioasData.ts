/*
 * ioasData.ts: the io_pagetable of an IOAS: which HWPT domains and accesses use it,
 * its IOVA alignment, and the huge-page option. The IOVA area/reserved/allowed maps
 * join it with the data plane.
 *
 * Invariant: `hwpts` lists the HWPT_PAGING objects whose domain is in this IOAS, in
 * creation order (automatic domain selection tries them in that order).
 */
export interface IoasData {
  readonly hwpts: readonly number[];
  readonly accesses: readonly number[];
  /** iopt->iova_alignment: 1 for a fresh IOAS, at most PAGE_SIZE. */
  readonly iovaAlignment: bigint;
  /** IOMMU_OPTION_HUGE_PAGES (1 = large IOPTEs allowed). */
  readonly hugePages: boolean;
}

export function emptyIoasData(): IoasData {
  return { hwpts: [], accesses: [], iovaAlignment: 1n, hugePages: true };
}

// Public face of hw/: the ground truth of DMA isolation. A device reaches exactly what
// the hardware structures modelled here translate (context entry, IOTLB, page table).
// Other folders import only from this file. Everything exported is immutable: every
// operation returns a new value and leaves the old one valid (time travel keeps them),
// except while an in-place epoch is open (own.ts: the in-place replay's reused steps).

export { READ, WRITE, DIRTY, RW, FORMATS, VTD_SL, ARM_LPAE_S2, MOCK } from './format.js';
export type { FormatName, PtFormat } from './format.js';

export { PageTable, PtNode, emptyTable, map, mapRuns, unmap, walk, stats, leafCode, leafPfn, leafProt, leafDepth, isTable } from './pagetable.js';
export type { PtLeaf, PtSlot, PtCounters, WalkResult, PtStats, MapRun } from './pagetable.js';
export { runs, readDirty, dirtyChunks, clearAllDirty } from './ptiter.js';
export type { PtRun, DirtyRange } from './ptiter.js';
export { depthsForSizes } from './format.js';

export { newEpoch, openEpoch, closeEpoch } from './own.js';
export type { HwUndo } from './own.js';

export { DEFAULT_IOTLB_CAPACITY, Iotlb, TlbEntry } from './iotlb.js';
export { PMap } from './pmap.js';
// Sorted-array helpers, also used by core's B+tree (one copy of each loop).
export { bound as sortedBound, inserted as arrayInserted, removed as arrayRemoved } from './sorted.js';

export {
  HwState,
  Unit,
  Domain,
  FaultLog,
  EMPTY_HW,
  addUnit,
  allocDomain,
  freeDomain,
  setContext,
  contextOf,
  domainMap,
  domainMapRuns,
  domainUnmap,
  setDirtyTracking,
  domainReadDirty,
  domainMarkDirty,
  getUnit,
  getDomain,
} from './state.js';
export type { ContextEntry, FaultKind, FaultRecord, DomainKind, DomainOptions } from './state.js';

export { dma, invalidate, domainUnmapSync, faultLog, clearFaults } from './dma.js';
export type { DmaResult, DmaSegment, DmaDir } from './dma.js';

export { iotlbConsistent, iotlbContents, domainRuns, domainWalk, domainStats } from './checks.js';
export type { TlbDisagreement, TlbView } from './checks.js';

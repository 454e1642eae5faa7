/*
 * hwsync.ts: the only door from the model into the simulated hardware. The model
 * tells hw what it decided (a domain exists, a range is mapped, a device's context
 * points at a domain, an invalidation was issued) in hardware words: units, RIDs,
 * domains, page tables. hw never sees an iommufd object, ID or ioctl.
 * It is also where the in-place stepper lends hw its undo log (hwOpenEpoch): hw then
 * writes the table pages it made during the same working copy in place.
 */
import { castDraft } from 'immer';
import * as hw from '../hw/index.js';
import type { DmaResult, HwState } from '../hw/index.js';
import { hasBug } from './bugs.js';

type W = { hw: HwState } | { hw: unknown };
const get = (d: W): HwState => d.hw as HwState;
const put = (d: W, h: HwState): void => {
  (d as { hw: unknown }).hw = castDraft(h);
};

export type HwContext = hw.ContextEntry;

/**
 * In-place hw writes (hw/own.ts) for the in-place stepper (core/workingCopy.ts): it
 * takes a new epoch whenever it starts a working copy from another World, opens it
 * around each step that writes that copy again (with the step's undo log), and closes
 * it when the step is sealed or rolled back.
 */
export const hwNewEpoch = (): number => hw.newEpoch();
export const hwOpenEpoch = (epoch: number, log: hw.HwUndo): void => hw.openEpoch(epoch, log);
export const hwCloseEpoch = (): void => hw.closeEpoch();
export type MapRun = hw.MapRun;

export function hwAllocDomain(d: W, unit: string, opts: { pageSizes: bigint; hugePages: boolean }): number {
  const r = hw.allocDomain(get(d), unit, opts);
  put(d, r.hw);
  return r.domain;
}

/** Frees a domain no context uses, flushing its IOTLB entries first (the driver's flush on free). */
export function hwFreeDomain(d: W, unit: string, domain: number): void {
  put(d, hw.freeDomain(hw.invalidate(get(d), unit, { domain }), domain));
}

export function hwSetContext(d: W, unit: string, rid: string, entry: HwContext | null): void {
  put(d, hw.setContext(get(d), unit, rid, entry));
}

export function hwMap(d: W, domain: number, iova: bigint, pa: bigint, length: bigint, prot: number): void {
  put(d, hw.domainMap(get(d), domain, iova, pa, length, prot));
}

/** Maps an area's physically separate runs as one page-table operation. */
export function hwMapRuns(d: W, domain: number, runs: readonly hw.MapRun[], prot: number): void {
  put(d, hw.domainMapRuns(get(d), domain, runs, prot));
}

/** Unmaps and then invalidates the IOTLB for the range, as iommu_unmap + iotlb_sync do. */
export function hwUnmap(d: W, unit: string, domain: number, iova: bigint, length: bigint): bigint {
  const r = hasBug(d, 'unmap-no-flush') ? hw.domainUnmap(get(d), domain, iova, length) : hw.domainUnmapSync(get(d), unit, domain, iova, length);
  put(d, r.hw);
  return r.unmapped;
}

export function hwDma(d: W, unit: string, rid: string, iova: bigint, length: bigint, dir: 'read' | 'write'): DmaResult {
  const r = hw.dma(get(d), unit, rid, iova, length, dir);
  put(d, r.hw);
  return r.result;
}

export function hwSetDirtyTracking(d: W, domain: number, on: boolean): void {
  put(d, hw.setDirtyTracking(get(d), domain, on));
}

/** A device write's dirty bit without the write (the selftest's set_dirty). */
export function hwMarkDirty(d: W, domain: number, iova: bigint): void {
  put(d, hw.domainMarkDirty(get(d), domain, iova));
}

export function hwReadDirty(d: W, domain: number, iova: bigint, length: bigint, pageSize: bigint, clear: boolean): hw.DirtyRange[] {
  const r = hw.domainReadDirty(get(d), domain, iova, length, pageSize, clear);
  put(d, r.hw);
  return r.dirty;
}

/** What a domain's page table translates `iova` to (a read of the table, no IOTLB), or null. */
export function hwWalk(d: W, domain: number, iova: bigint): { pa: bigint; prot: number; pageSize: bigint } | null {
  return hw.domainWalk(get(d), domain, iova);
}

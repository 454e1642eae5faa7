/*
 * hwsync.ts: the only door from the model into the simulated hardware. The model
 * tells hw what it decided (a domain exists, a range is mapped, a device's context
 * points at a domain, an invalidation was issued) in hardware words: units, RIDs,
 * domains, page tables. hw never sees an iommufd object, ID or ioctl.
 */
import type { Draft } from 'immer';
import * as hw from '../hw/state.js';
import * as hwdma from '../hw/dma.js';
import type { DmaResult } from '../hw/dma.js';
import type { World } from './world.js';

type W = Draft<World> | { hw: hw.HwState };

export type HwContext = hw.ContextEntry;

export function hwAllocDomain(d: W, unit: string, opts: { pageSizes: bigint; hugePages: boolean }): number {
  const r = hw.allocDomain(d.hw as hw.HwState, unit, opts);
  d.hw = r.hw;
  return r.domain;
}

export function hwFreeDomain(d: W, domain: number): void {
  d.hw = hw.freeDomain(d.hw as hw.HwState, domain);
}

export function hwSetContext(d: W, unit: string, rid: string, entry: HwContext | null): void {
  d.hw = hw.setContext(d.hw as hw.HwState, unit, rid, entry);
}

export function hwMap(d: W, domain: number, iova: bigint, pa: bigint, length: bigint, prot: number): void {
  d.hw = hw.domainMap(d.hw as hw.HwState, domain, iova, pa, length, prot);
}

export function hwUnmap(d: W, domain: number, iova: bigint, length: bigint): bigint {
  const r = hw.domainUnmap(d.hw as hw.HwState, domain, iova, length);
  d.hw = r.hw;
  return r.unmapped;
}

export function hwDma(d: W, unit: string, rid: string, iova: bigint, length: bigint, dir: 'read' | 'write'): DmaResult {
  const r = hwdma.dma(d.hw as hw.HwState, unit, rid, iova, length, dir);
  d.hw = r.hw;
  return r.result;
}

/** IOTLB invalidation the model issues after it changed a domain's translations. */
export function hwInvalidate(d: W, unit: string, scope: { domain?: number; iova?: bigint; length?: bigint }): void {
  d.hw = hwdma.invalidate(d.hw as hw.HwState, unit, scope);
}

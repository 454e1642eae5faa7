/*
 * hwpt.ts: HWPT_PAGING objects: allocation (automatic, on attach to an IOAS, or
 * manual through IOMMU_HWPT_ALLOC), the compatibility rules a device must meet to
 * use one, and destruction (the domain leaves its IOAS, then the hardware domain
 * is freed).
 *
 * Invariant: cache-coherency enforcement is fixed when the HWPT is allocated (v6.7
 * and later) and a non-enforcing device is never attached to an enforcing domain.
 */
import type { Draft } from 'immer';
import type { Device, HwptPagingObj, World } from './world.js';
import { allocId } from './objects.js';
import { hwAllocDomain, hwFreeDomain } from './hwsync.js';
import { ioasAddDomain, ioasRemoveDomain, type Refusal } from './ioasDomains.js';
import { peek, plat } from './peek.js';

export function deviceEnforcesCoherency(d: Draft<World> | World, dev: Device): boolean {
  const unit = plat(d).units.find((u) => u.name === dev.unit)!;
  return unit.caps.enforceCoherency && !dev.flags.includes('NO_ENFORCE_COHERENCY');
}

export function deviceDirtyCapable(d: Draft<World> | World, dev: Device): boolean {
  const unit = plat(d).units.find((u) => u.name === dev.unit)!;
  return unit.caps.dirtyTracking && !dev.flags.includes('NO_DIRTY_TRACKING');
}

/** Why the IOMMU driver would refuse to attach `dev` to this HWPT (EINVAL), or null. */
export function incompatibility(d: Draft<World>, hwpt: HwptPagingObj, dev: Device): string | null {
  if (hwpt.unit !== dev.unit) return `HWPT ${hwpt.id} is a domain of ${hwpt.unit}, but ${dev.name} is behind ${dev.unit}`;
  if (hwpt.enforceCoherency && !deviceEnforcesCoherency(d, dev))
    return `HWPT ${hwpt.id} enforces cache coherency and ${dev.name} cannot (no snoop control)`;
  if (hwpt.dirtyTracking && !deviceDirtyCapable(d, dev)) return `HWPT ${hwpt.id} tracks dirty pages and ${dev.name}'s IOMMU cannot`;
  return null;
}

export interface HwptOptions {
  readonly auto: boolean;
  readonly nestParent: boolean;
  readonly dirtyTracking: boolean;
}

/** Allocates the object and its hardware domain; the caller adds it to the IOAS. */
export function allocHwpt(d: Draft<World>, ctxId: number, ioasId: number, dev: Device, o: HwptOptions): number {
  const ctx = d.ctxs[ctxId]!;
  const id = allocId(ctx);
  const unit = plat(d).units.find((u) => u.name === dev.unit)!;
  const ioas = ctx.objects[ioasId]!;
  // The mock IOMMU has 1 MiB pages only for HUGE_IOVA devices; real formats follow the IOAS option.
  const hugePages = unit.format === 'mock' ? dev.flags.includes('HUGE_IOVA') : ioas.type === 'ioas' && ioas.data.hugePages;
  const domain = hwAllocDomain(d, dev.unit, { pageSizes: unit.format === 'mock' ? unit.pageSizes | (1n << 20n) : unit.pageSizes, hugePages });
  ctx.objects[id] = {
    type: 'hwpt_paging', id, ioas: ioasId, auto: o.auto, unit: dev.unit, domain, nestParent: o.nestParent,
    dirtyTracking: o.dirtyTracking, enforceCoherency: deviceEnforcesCoherency(d, dev), devices: 0,
  };
  return id;
}

export function addHwptToIoas(d: Draft<World>, ctxId: number, hwptId: number): Refusal | null {
  return ioasAddDomain(d, ctxId, hwptId);
}

/** Destroys an HWPT with no users: the domain leaves the IOAS and is freed. */
export function destroyHwpt(d: Draft<World>, ctxId: number, hwptId: number): void {
  const ctx = d.ctxs[ctxId]!;
  const hwpt = peek(peek(ctx.objects)[hwptId]) as HwptPagingObj;
  if (hwpt.devices !== 0) throw new Error(`destroying HWPT ${hwptId} with ${hwpt.devices} devices`);
  ioasRemoveDomain(d, ctxId, hwptId);
  hwFreeDomain(d, hwpt.unit, hwpt.domain);
  delete ctx.objects[hwptId];
}

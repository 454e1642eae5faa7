/*
 * ioasDomains.ts: how domains and devices meet an IOAS's io_pagetable: adding a
 * domain (alignment rises to the domain's smallest page; the outside of its
 * aperture becomes reserved; every existing area is pinned and mapped into it),
 * removing it, filling and releasing single areas, and a device's reserved regions
 * while it is attached.
 *
 * Invariants: every domain in an IOAS mirrors the IOAS's areas exactly (an area is
 * in all of them or, with no domain, pinned nowhere); areas never meet reserved
 * ranges; alignment is the maximum over domains, accesses and the huge-page
 * option, never above PAGE_SIZE; a page is unpinned only after it left every domain.
 */
import type { Draft } from 'immer';
import type { Errno } from '../events/index.js';
import { U64_MAX, alignmentCheck, checkReserve, fmtRange, type IntervalEntry } from './iopt/index.js';
import type { Area, IoasData } from './ioasData.js';
import type { HwptPagingObj, IoasObj, World } from './world.js';
import { addPinUser, getPages, isPages, physOf, removePinUser, storePages, unrefPages, withPinUser, type Pages, type PinUser } from './pages.js';
import { hwMapRuns, hwUnmap, type MapRun } from './hwsync.js';
import { peek, plat } from './peek.js';

export type Refusal = { readonly errno: Errno; readonly reason: string };

const smallestPage = (bitmap: bigint): bigint => bitmap & -bitmap;

function ioasOf(d: Draft<World>, ctxId: number, ioasId: number): Draft<IoasObj> {
  const o = d.ctxs[ctxId]!.objects[ioasId];
  if (!o || o.type !== 'ioas') throw new Error(`${ioasId} is not an IOAS`);
  return o;
}
const data = (io: Draft<IoasObj>) => io.data as unknown as IoasData;

/** The objects of a ctx, read without drafting. */
const objectsOf = (d: Draft<World>, ctxId: number) => peek(peek(peek(d).ctxs)[ctxId]!.objects);

function hwptsOf(d: Draft<World>, ctxId: number, io: Draft<IoasObj>): HwptPagingObj[] {
  const objects = objectsOf(d, ctxId);
  return peek(data(io).hwpts).map((h) => peek(objects[h]) as unknown as HwptPagingObj);
}

/** iopt_calculate_iova_alignment over the IOAS's current users (optionally with one more domain). */
export function alignmentFor(d: Draft<World>, ctxId: number, ioasId: number, extraUnit?: string): bigint {
  // A pure read: nothing is drafted.
  const ctx = peek(peek(d).ctxs)[ctxId]!;
  const io = peek(peek(ctx.objects)[ioasId]);
  if (!io || io.type !== 'ioas') throw new Error(`${ioasId} is not an IOAS`);
  const units = hwptsOf(d, ctxId, io as Draft<IoasObj>).map((h) => h.unit);
  if (extraUnit) units.push(extraUnit);
  let align = 1n;
  for (const u of units) {
    const p = smallestPage(plat(d).units.find((x) => x.name === u)!.pageSizes);
    if (p > align) align = p;
  }
  for (const a of peek(io.data.accesses)) {
    const acc = peek(peek(ctx.objects)[a]);
    if (acc?.type === 'access' && acc.needsPin && plat(d).pageSize > align) align = plat(d).pageSize;
  }
  if (!io.data.hugePages && plat(d).pageSize > align) align = plat(d).pageSize;
  return align;
}

/** The pin user an area of an IOAS is on its pages: the area's page indexes, keyed by its IOVA. */
function areaUser(d: Draft<World>, ioasId: number, e: IntervalEntry<Area>): PinUser {
  const P = plat(d).pageSize;
  const off = e.value.pageOffset;
  return { key: areaKey(ioasId, e.start), first: Number(off / P), last: Number((off + (e.last - e.start)) / P) };
}
/**
 * An area's pin-user key, flat. V8 keeps a concatenation of 13 or more characters as a
 * rope, and `===` on two ropes goes through the runtime, flattening both: UNMAP's check
 * that its key is on the pages cost ~4% of a vm-churn replay that way. Reading a
 * character flattens the rope once, here, so the check is a plain compare.
 */
function areaKey(ioasId: number, iova: bigint): string {
  const key = `a:${ioasId}:${iova.toString(16)}`;
  key.charCodeAt(0);
  return key;
}

/** The physical runs behind an area, as IOVA -> PA runs for the page tables. */
function runsOf(d: Draft<World>, p: Pages, e: IntervalEntry<Area>): MapRun[] {
  return physOf(p, plat(d).pageSize, e.value.pageOffset, e.last - e.start + 1n, e.start);
}

function mapInto(d: Draft<World>, ctxId: number, e: IntervalEntry<Area>, domain: number): void {
  hwMapRuns(d, domain, runsOf(d, getPages(d, ctxId, e.value.pages), e), e.value.prot);
}

/**
 * Pins an area and maps it into every domain of its IOAS (nothing to pin without
 * domains). `fresh`: the area's pages object, new and not yet stored (MAP), which is
 * stored here once, pinned or not.
 */
export function fillArea(d: Draft<World>, ctxId: number, ioasId: number, e: IntervalEntry<Area>, fresh?: Pages): Refusal | null {
  const io = ioasOf(d, ctxId, ioasId);
  // The HWPT ids, read in place (no array of their objects per MAP and UNMAP).
  const hwpts = peek(data(io).hwpts);
  if (hwpts.length === 0) {
    if (fresh) storePages(d, ctxId, fresh, undefined);
    return null;
  }
  const prev = fresh ? undefined : getPages(d, ctxId, e.value.pages);
  const p = withPinUser(d, fresh ?? prev!, areaUser(d, ioasId, e));
  if (!isPages(p)) return p;
  storePages(d, ctxId, p, prev);
  // Every domain gets the same runs (the pins just made do not move).
  const runs = runsOf(d, p, e);
  const objects = objectsOf(d, ctxId);
  for (const id of hwpts) hwMapRuns(d, (peek(objects[id]) as unknown as HwptPagingObj).domain, runs, e.value.prot);
  return null;
}

/**
 * Unmaps an area from every domain (with IOTLB invalidation), then drops its pin user
 * (unpinning what nobody else holds) and its reference to its pages.
 */
export function releaseArea(d: Draft<World>, ctxId: number, ioasId: number, e: IntervalEntry<Area>): void {
  const io = ioasOf(d, ctxId, ioasId);
  const hwpts = peek(data(io).hwpts);
  if (hwpts.length !== 0) {
    const objects = objectsOf(d, ctxId);
    const length = e.last - e.start + 1n;
    for (const id of hwpts) {
      const h = peek(objects[id]) as unknown as HwptPagingObj;
      hwUnmap(d, h.unit, h.domain, e.start, length);
    }
  }
  unrefPages(d, ctxId, e.value.pages, hwpts.length === 0 ? null : areaKey(ioasId, e.start));
}

/** iopt_table_add_domain: the HWPT's domain joins its IOAS. */
export function ioasAddDomain(d: Draft<World>, ctxId: number, hwptId: number): Refusal | null {
  const ctx = d.ctxs[ctxId]!;
  const hwpt = peek(peek(ctx.objects)[hwptId]) as unknown as HwptPagingObj;
  const io = ioasOf(d, ctxId, hwpt.ioas);
  // Every read of the IOAS data below comes before the writes at the end: read it undrafted.
  const cur = peek(data(io));
  const unit = plat(d).units.find((u) => u.name === hwpt.unit)!;
  if (smallestPage(unit.pageSizes) > plat(d).pageSize)
    return { errno: 'EINVAL', reason: `the domain's smallest page (${smallestPage(unit.pageSizes)}) is larger than PAGE_SIZE` };
  const align = alignmentFor(d, ctxId, hwpt.ioas, hwpt.unit);
  if (align > cur.iovaAlignment) {
    const bad = alignmentCheck(cur.areas, align, (a) => a.pageOffset % plat(d).pageSize);
    if (bad) return { errno: 'EADDRINUSE', reason: `a domain of ${hwpt.unit} needs ${align}-byte alignment: ${bad.reason}` };
  }
  const owner = `domain:${hwptId}`;
  const outside: [bigint, bigint][] = [];
  if (unit.aperture.start > 0n) outside.push([0n, unit.aperture.start - 1n]);
  if (unit.aperture.last < U64_MAX) outside.push([unit.aperture.last + 1n, U64_MAX]);
  let reserved = cur.reserved;
  for (const [s, l] of outside) {
    const c = checkReserve(cur.areas, cur.allowed, s, l);
    if (!c.ok) return { errno: 'EADDRINUSE', reason: `the aperture of HWPT ${hwptId} leaves ${fmtRange(s, l)} unusable, but ${c.reason}` };
    reserved = reserved.add(owner, s, l);
  }
  const first = cur.hwpts.length === 0;
  for (const e of cur.areas.entries()) {
    if (first) {
      const r = addPinUser(d, ctxId, e.value.pages, areaUser(d, hwpt.ioas, e));
      if (r) return r;
    }
    mapInto(d, ctxId, e, hwpt.domain);
  }
  io.data.reserved = reserved as never;
  io.data.hwpts = [...peek(io.data.hwpts), hwptId];
  io.data.iovaAlignment = align;
  return null;
}

/** Removes a domain from its IOAS (HWPT destroy or auto HWPT release). Cannot fail. */
export function ioasRemoveDomain(d: Draft<World>, ctxId: number, hwptId: number): void {
  const ctx = d.ctxs[ctxId]!;
  const hwpt = peek(peek(ctx.objects)[hwptId]) as unknown as HwptPagingObj;
  const io = ioasOf(d, ctxId, hwpt.ioas);
  const last = data(io).hwpts.length === 1;
  for (const e of data(io).areas.entries()) {
    hwUnmap(d, hwpt.unit, hwpt.domain, e.start, e.last - e.start + 1n);
    if (last) removePinUser(d, ctxId, e.value.pages, areaKey(hwpt.ioas, e.start));
  }
  io.data.hwpts = io.data.hwpts.filter((h) => h !== hwptId);
  io.data.reserved = data(io).reserved.removeOwner(`domain:${hwptId}`) as never;
  io.data.iovaAlignment = alignmentFor(d, ctxId, hwpt.ioas);
}

/** iopt_table_enforce_dev_resv_regions: the device's reserved regions join the IOAS. */
export function ioasEnforceDevResv(d: Draft<World>, ctxId: number, ioasId: number, dev: string): Refusal | null {
  const io = ioasOf(d, ctxId, ioasId);
  const unit = plat(d).units.find((u) => u.name === peek(peek(d).devices)[dev]!.unit)!;
  const cur = peek(data(io));
  let reserved = cur.reserved;
  for (const r of unit.reserved) {
    const c = checkReserve(cur.areas, cur.allowed, r.start, r.last);
    if (!c.ok) return { errno: 'EADDRINUSE', reason: `${dev} reserves its ${r.type.toUpperCase()} window ${fmtRange(r.start, r.last)}, but ${c.reason}` };
    reserved = reserved.add(`dev:${dev}`, r.start, r.last);
  }
  io.data.reserved = reserved as never;
  return null;
}

/** Removes the reservations a device holds in an IOAS. */
export function ioasRemoveDevResv(d: Draft<World>, ctxId: number, ioasId: number, dev: string): void {
  const io = ioasOf(d, ctxId, ioasId);
  io.data.reserved = data(io).reserved.removeOwner(`dev:${dev}`) as never;
}

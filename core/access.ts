/*
 * access.ts: the in-kernel access kAPI (include/linux/iommufd.h, drivers/iommu/
 * iommufd/device.c) that emulated devices (VFIO mdev drivers) and the selftest's mock
 * access use: attach, replace and detach an ACCESS to an IOAS, pin and unpin pages,
 * read and write through the IOAS without pinning, destroy, and the unmap
 * notification an UNMAP sends to every access of the IOAS when it meets an area the
 * accesses still pin.
 *
 * Invariants: an access's pins lie in areas of the IOAS it is attached to (replace,
 * detach and destroy drop all of them first); each pin is a PinUser of the area's
 * pages object, so a page stays pinned while a domain or an access needs it and a pin
 * never counts twice; an UNMAP never removes an area an access still pins (the
 * drivers are told to unpin, and one that does not makes UNMAP fail with EDEADLOCK).
 */
import type { Draft } from 'immer';
import type { Errno } from '../events/index.js';
import { U64_MAX, alignmentCheck, fmtRange, type IntervalEntry } from './iopt/index.js';
import type { Area, IoasData } from './ioasData.js';
import type { AccessObj, AccessPin, AccessPinPiece, IoasObj, World } from './world.js';
import { addPinUser, getPages, removePinUser } from './pages.js';
import { alignmentFor } from './ioasDomains.js';
import { memOf, touch } from './mem.js';
import { peek, plat } from './peek.js';

export type Refusal = { readonly errno: Errno; readonly reason: string };
const no = (errno: Errno, reason: string): Refusal => ({ errno, reason });
const hex = (n: bigint) => `0x${n.toString(16)}`;

/** IOMMUFD_ACCESS_RW_WRITE. */
export const RW_WRITE = 1;
/** How often UNMAP notifies the accesses before it gives up (iopt_unmap_iova_range). */
export const UNMAP_RETRIES = 100;

export function accessOf(d: Draft<World>, ctxId: number, id: number): Draft<AccessObj> {
  const o = d.ctxs[ctxId]!.objects[id];
  if (!o || o.type !== 'access') throw new Error(`${id} is not an ACCESS`);
  return o;
}

function ioasOf(d: Draft<World>, ctxId: number, id: number): Draft<IoasObj> {
  const o = d.ctxs[ctxId]!.objects[id];
  if (!o || o.type !== 'ioas') throw new Error(`${id} is not an IOAS`);
  return o;
}
const data = (io: Draft<IoasObj>) => io.data as unknown as IoasData;

/** A new ACCESS object (iommufd_access_create): unattached, holding no pins. */
export function newAccess(id: number, needsPin: boolean, driver: AccessObj['driver']): AccessObj {
  return { type: 'access', id, ioas: null, needsPin, driver, pins: [], nextItem: 0, keepsPins: false };
}

/** Drops the pins `which` selects (the driver's iommufd_access_unpin_pages calls). */
function dropPins(d: Draft<World>, ctxId: number, acc: Draft<AccessObj>, which: (p: AccessPin) => boolean): number {
  const gone = (acc.pins as AccessPin[]).filter(which);
  for (const p of gone) for (const piece of p.pieces) removePinUser(d, ctxId, piece.pages, piece.key);
  acc.pins = (acc.pins as AccessPin[]).filter((p) => !which(p)) as never;
  return gone.length;
}

/** ops->unmap(iova, length) on one access: a well-behaved driver unpins every pin that meets the range. */
function notifyOne(d: Draft<World>, ctxId: number, acc: Draft<AccessObj>, first: bigint, last: bigint): void {
  if (acc.keepsPins) return;
  dropPins(d, ctxId, acc, (p) => p.iova <= last && first <= p.iova + p.length - 1n);
}

/**
 * iommufd_access_change_ioas: attach to `next` (null: detach). The new IOAS's
 * alignment rises to PAGE_SIZE for a pinning access (EADDRINUSE when existing areas do
 * not fit); the driver is told to drop all its pins before the old IOAS lets go.
 */
function changeIoas(d: Draft<World>, ctxId: number, acc: Draft<AccessObj>, next: number | null): Refusal | null {
  const cur = acc.ioas;
  if (next !== null) {
    const o = d.ctxs[ctxId]!.objects[next];
    if (!o || o.type !== 'ioas') return no('ENOENT', o ? `object ${next} is a ${o.type}, not an IOAS` : `no object with ID ${next}`);
  }
  if (cur === next) return null;
  if (next !== null) {
    const io = ioasOf(d, ctxId, next);
    io.data.accesses = [...peek(io.data.accesses), acc.id];
    const align = alignmentFor(d, ctxId, next);
    if (align > data(io).iovaAlignment) {
      const bad = alignmentCheck(data(io).areas, align, (a: Area) => a.pageOffset % plat(d).pageSize);
      if (bad) {
        io.data.accesses = io.data.accesses.filter((a) => a !== acc.id);
        return no('EADDRINUSE', `ACCESS ${acc.id} pins pages and needs ${hex(align)}-byte alignment: ${bad.reason}`);
      }
    }
    io.data.iovaAlignment = align;
  }
  acc.ioas = next;
  if (cur !== null) {
    // ops->unmap(0, ULONG_MAX): the driver drops all its pins (the kernel WARNs if it does not).
    dropPins(d, ctxId, acc, () => true);
    const old = ioasOf(d, ctxId, cur);
    old.data.accesses = old.data.accesses.filter((a) => a !== acc.id);
    old.data.iovaAlignment = alignmentFor(d, ctxId, cur);
  }
  return null;
}

/** iommufd_access_attach: EINVAL (a driver bug, WARN) when already attached; ENOENT for a non-IOAS. */
export function accessAttach(d: Draft<World>, ctxId: number, accId: number, ioasId: number): Refusal | null {
  const acc = accessOf(d, ctxId, accId);
  if (acc.ioas !== null) return no('EINVAL', `ACCESS ${accId} is already attached to IOAS ${acc.ioas}`);
  return changeIoas(d, ctxId, acc, ioasId);
}

/** iommufd_access_replace: ENOENT when not attached; the same IOAS is a no-op. */
export function accessReplace(d: Draft<World>, ctxId: number, accId: number, ioasId: number): Refusal | null {
  const acc = accessOf(d, ctxId, accId);
  if (acc.ioas === null) return no('ENOENT', `ACCESS ${accId} is not attached`);
  return changeIoas(d, ctxId, acc, ioasId);
}

/** iommufd_access_detach: cannot fail. */
export function accessDetach(d: Draft<World>, ctxId: number, accId: number): void {
  const acc = accessOf(d, ctxId, accId);
  if (acc.ioas !== null) changeIoas(d, ctxId, acc, null);
}

/** iommufd_access_destroy: the driver's pins go, the access leaves its IOAS, the object goes. */
export function accessDestroy(d: Draft<World>, ctxId: number, accId: number): void {
  const acc = accessOf(d, ctxId, accId);
  dropPins(d, ctxId, acc, () => true);
  accessDetach(d, ctxId, accId);
  delete d.ctxs[ctxId]!.objects[accId];
}

interface Piece {
  readonly e: IntervalEntry<Area>;
  /** First and last IOVA of the range inside this area. */
  readonly first: bigint;
  readonly last: bigint;
  /** The range continues past this area. */
  readonly more: boolean;
}

/**
 * The common prologue of pin_pages and rw: length, overflow, attached; then the
 * contiguous run of areas covering [iova, iova+length-1], checked area by area with
 * `check` (the first refusal wins), and ENOENT when the run has a hole.
 */
function walk(
  d: Draft<World>, ctxId: number, acc: Draft<AccessObj>, iova: bigint, length: bigint,
  check: (p: Piece) => Refusal | null,
): Refusal | null {
  if (length === 0n) return no('EINVAL', 'length 0');
  const last = iova + length - 1n;
  if (last > U64_MAX) return no('EOVERFLOW', 'iova + length - 1 overflows');
  if (acc.ioas === null) return no('ENOENT', `ACCESS ${acc.id} is not attached to an IOAS`);
  const io = ioasOf(d, ctxId, acc.ioas);
  let cur = iova;
  for (const e of data(io).areas.intersecting(iova, last)) {
    if (e.start > cur) break;
    const l = e.last < last ? e.last : last;
    const r = check({ e, first: cur, last: l, more: last > e.last });
    if (r) return r;
    cur = l + 1n;
    if (l === last) break;
  }
  if (cur <= last) return no('ENOENT', `${fmtRange(iova, last)} of IOAS ${acc.ioas} is not fully mapped (no area at ${hex(cur)})`);
  return null;
}

function protRefusal(d: Draft<World>, ctxId: number, p: Piece, write: boolean): Refusal | null {
  const a = p.e.value;
  if (write ? !(a.prot & 2) : !(a.prot & 1))
    return no('EPERM', `area ${fmtRange(p.e.start, p.e.last)} is not ${write ? 'writeable' : 'readable'}`);
  if (write && !getPages(d, ctxId, a.pages).writable) return no('EPERM', `the pages behind ${fmtRange(p.e.start, p.e.last)} are not writable`);
  return null;
}

/**
 * iommufd_access_pin_pages: pins every page under [iova, iova+length-1] for the access
 * and records the pin as one driver item. Refusals in the kernel's order: EINVAL
 * (length 0), EOVERFLOW, ENOENT (not attached), then per area EINVAL (not page
 * aligned at the start or at an inner area boundary), EPERM (protection), EFAULT or
 * ENOMEM (pinning), and ENOENT for a hole.
 */
export function accessPin(d: Draft<World>, ctxId: number, accId: number, iova: bigint, length: bigint, flags: number): { item: number } | Refusal {
  const acc = accessOf(d, ctxId, accId);
  const PAGE = plat(d).pageSize;
  const write = (flags & RW_WRITE) !== 0;
  const item = acc.nextItem;
  const pieces: AccessPinPiece[] = [];
  const r = walk(d, ctxId, acc, iova, length, (p) => {
    const a = p.e.value;
    const startByte = a.pageOffset + (p.first - p.e.start);
    const endByte = a.pageOffset + (p.e.last - p.e.start);
    if (startByte % PAGE !== 0n || (p.more && endByte % PAGE !== PAGE - 1n))
      return no('EINVAL', `pinning needs page-aligned bytes: ${hex(p.first)} ${startByte % PAGE ? 'starts' : 'crosses an area boundary'} inside a page`);
    const pr = protRefusal(d, ctxId, p, write);
    if (pr) return pr;
    const key = `x:${acc.id}:${item}:${p.e.start.toString(16)}`;
    const lastByte = a.pageOffset + (p.last - p.e.start);
    const refused = addPinUser(d, ctxId, a.pages, { key, first: Number(startByte / PAGE), last: Number(lastByte / PAGE) });
    if (refused) return refused;
    pieces.push({ area: p.e.start, pages: a.pages, key });
    return null;
  });
  if (r) return r;
  acc.pins.push({ item, iova, length, pieces } as never);
  acc.nextItem = item + 1;
  return { item };
}

/** The driver unpins one of its items (exactly as pinned); false when it has no such item. */
export function accessUnpinItem(d: Draft<World>, ctxId: number, accId: number, item: number): boolean {
  return dropPins(d, ctxId, accessOf(d, ctxId, accId), (p) => p.item === item) > 0;
}

/**
 * iommufd_access_rw: reads or writes through the IOAS without keeping a pin. The same
 * checks as pin_pages but alignment does not matter; the data comes from pinned pages
 * (a domain or an access holds them) or from the source process's memory (EFAULT when
 * that is gone or unmapped).
 */
export function accessRw(d: Draft<World>, ctxId: number, accId: number, iova: bigint, length: bigint, flags: number): Refusal | null {
  const acc = accessOf(d, ctxId, accId);
  const PAGE = plat(d).pageSize;
  const write = (flags & RW_WRITE) !== 0;
  return walk(d, ctxId, acc, iova, length, (p) => {
    const pr = protRefusal(d, ctxId, p, write);
    if (pr) return pr;
    const pages = getPages(d, ctxId, p.e.value.pages);
    const first = Number((p.e.value.pageOffset + (p.first - p.e.start)) / PAGE);
    const last = Number((p.e.value.pageOffset + (p.last - p.e.start)) / PAGE);
    let held = 0;
    for (const run of pages.pinned) {
      const s = Math.max(run.first, first), e = Math.min(run.last, last);
      if (e >= s) held += e - s + 1;
    }
    if (held === last - first + 1) return null;
    if (!d.procs[pages.pid]) return no('EFAULT', `pid ${pages.pid}, whose memory backs ${fmtRange(p.e.start, p.e.last)}, has exited and no domain holds the pages`);
    const t = touch(memOf(d), pages.pid, pages.va + BigInt(first) * PAGE, BigInt(last - first + 1) * PAGE, write);
    if (!t.ok) return no('EFAULT', `cannot reach the memory behind ${fmtRange(p.e.start, p.e.last)}: ${t.why}`);
    d.mem = t.mem;
    return null;
  });
}

/** Does some access still pin through the area starting at `areaStart` of this IOAS (area->num_accesses)? */
export function areaAccessors(d: Draft<World>, ctxId: number, ioasId: number, areaStart: bigint): number[] {
  const io = ioasOf(d, ctxId, ioasId);
  return data(io).accesses.filter((a) => {
    const acc = d.ctxs[ctxId]!.objects[a];
    return acc?.type === 'access' && (acc.pins as AccessPin[]).some((p) => p.pieces.some((x) => x.area === areaStart));
  });
}

/**
 * What an UNMAP does before it removes an area that accesses pin: it calls ops->unmap
 * on every access of the IOAS for the area's range and retries; when pins remain
 * after UNMAP_RETRIES rounds it gives up with EDEADLOCK (and the kernel WARNs).
 */
export function notifyUnmap(d: Draft<World>, ctxId: number, ioasId: number, e: IntervalEntry<Area>): Refusal | null {
  if (areaAccessors(d, ctxId, ioasId, e.start).length === 0) return null;
  const io = ioasOf(d, ctxId, ioasId);
  for (const a of [...data(io).accesses]) notifyOne(d, ctxId, accessOf(d, ctxId, a), e.start, e.last);
  const still = areaAccessors(d, ctxId, ioasId, e.start);
  if (still.length)
    return no('EDEADLOCK', `ACCESS ${still.join(', ')} kept its pins in ${fmtRange(e.start, e.last)} after ${UNMAP_RETRIES} unmap notifications`);
  return null;
}

/*
 * bugs.ts: named, deliberately broken variants of the model, for checking that the
 * property suite (properties/) finds real isolation bugs. A World carries the set of
 * bugs it runs with (`withBugs`); the switches read it from the draft they already
 * have, so no handler signature changes and there is no module-level state. A World
 * built by `initialWorld` has no bugs, and a trace never turns one on.
 */
import type { Draft } from 'immer';
import type { World } from './world.js';
import type { Area } from './ioasData.js';
import { createPages, getPages } from './pages.js';
import { plat } from './peek.js';

export const BUGS = {
  'unmap-no-flush': 'hwsync.ts hwUnmap: unmaps from the page table but skips the IOTLB invalidation',
  'claim-one-device': 'ownership.ts claimDmaOwner: only the device being bound moves to the blocking domain; its group-mates keep the default domain',
  'probe-ignores-ownership': 'device.ts probeDriver: a DMA-API driver probes without the ownership check (use_default_domain)',
  'copy-pins-twice': 'ioas.ts COPY: the destination gets fresh pages (pinned and charged again) instead of sharing the source pages',
  'attach-mate-other-hwpt': 'attach.ts hwptAttach: a group-mate may attach to a page table other than the one its group uses',
} as const;
export type BugName = keyof typeof BUGS;
export const BUG_NAMES = Object.keys(BUGS) as BugName[];

export function isBugName(s: string): s is BugName {
  return Object.prototype.hasOwnProperty.call(BUGS, s);
}

/** The same World, running with `bugs` switched on from now. */
export function withBugs(w: World, bugs: readonly BugName[]): World {
  return { ...w, bugs: Object.freeze([...bugs]) };
}

/** Is `bug` switched on in this World (or draft, or any object carrying `bugs`)? */
export function hasBug(w: unknown, bug: BugName): boolean {
  const b = (w as { bugs?: readonly string[] }).bugs;
  return b !== undefined && b.includes(bug);
}

/** copy-pins-twice: a fresh pages object over the same user memory, replacing the shared one. */
export function copyArea(d: Draft<World>, ctxId: number, area: Area): Area {
  if (!hasBug(d, 'copy-pins-twice')) return area;
  const src = getPages(d, ctxId, area.pages);
  const PAGE = plat(d).pageSize;
  const pid = d.procs[src.pid] ? src.pid : Number(Object.keys(d.procs)[0]);
  const fresh = createPages(d, ctxId, pid, src.va, BigInt(src.npages) * PAGE, src.writable);
  return { ...area, pages: fresh.id };
}

/*
 * pages.ts: iopt_pages, the pinned-memory source behind areas (drivers/iommu/
 * iommufd/pages.c). A pages object covers a page-aligned user VA range of its
 * source process. Pages are pinned lazily, only while some *user* needs them: an
 * area whose IOAS has at least one domain, or an access pin. Each page index is
 * pinned at most once however many users cover it (single pin), and the RLIMIT
 * charge always equals the number pinned.
 *
 * Vocabulary: indexes are host pages of the pages object; `first`/`last` are
 * inclusive index bounds; byte offsets are from the pages object's start.
 */
import type { Draft } from 'immer';
import type { Errno } from '../events/index.js';
import { BTree } from './btree.js';
import type { World } from './world.js';
import { backedExtent, memOf, touch } from './mem.js';
import { plat } from './peek.js';
import { ABSENT, undoLog } from './undo.js';

export interface PinUser {
  readonly key: string;
  readonly first: number;
  readonly last: number;
}

/** A run of pinned page indexes backed by physically contiguous frames from `pa`. */
export interface PinnedRun {
  readonly first: number;
  readonly last: number;
  readonly pa: bigint;
}

export interface Pages {
  readonly id: number;
  readonly pid: number;
  /** The source process's serial: a later process that reuses the pid is not the source. */
  readonly serial: number;
  readonly uid: number;
  /** Page-aligned first user address. */
  readonly va: bigint;
  readonly npages: number;
  readonly writable: boolean;
  /** IOPT_PAGES_ACCOUNT_*: none with CAP_IPC_LOCK, else the ctx's mode at creation. */
  readonly account: 'none' | 'user' | 'mm';
  /** RLIMIT_MEMLOCK (bytes) of the source task, kept for when it has exited. */
  readonly memlock: bigint;
  /** Number of areas referencing this object (kref); freed at 0. */
  readonly areas: number;
  readonly users: readonly PinUser[];
  readonly pinned: readonly PinnedRun[];
}

export type PagesTable = BTree<number, Pages>;
export const emptyPages = (): PagesTable => new BTree<number, Pages>();

export type PinRefusal = { readonly errno: Errno; readonly reason: string };

export function npinned(p: Pages): number {
  let n = 0;
  for (const r of p.pinned) n += r.last - r.first + 1;
  return n;
}

function pageSize(d: Draft<World>): bigint {
  return plat(d).pageSize;
}

/** Index runs of [first, last] not covered by `runs` (sorted, disjoint). */
function gaps(runs: readonly { first: number; last: number }[], first: number, last: number): [number, number][] {
  const out: [number, number][] = [];
  let cur = first;
  for (const r of runs) {
    if (r.last < cur) continue;
    if (r.first > last) break;
    if (r.first > cur) out.push([cur, Math.min(r.first - 1, last)]);
    cur = Math.max(cur, r.last + 1);
    if (cur > last) break;
  }
  if (cur <= last) out.push([cur, last]);
  return out;
}

/** The union of the users' index ranges, sorted and disjoint. */
function union(users: readonly PinUser[]): [number, number][] {
  const rs = users.map((u) => [u.first, u.last] as [number, number]).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const r of rs) {
    const top = out[out.length - 1];
    if (top && r[0] <= top[1] + 1) top[1] = Math.max(top[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/**
 * The pages table a working copy may write in place (core/workingCopy.ts): a clone
 * nobody else could reach when it was made, so writes go in place (the B+tree copies
 * each shared node once, at its first write) instead of one path copy per write. A
 * persistent step owns its clone for one step; the in-place stepper keeps its clone
 * across steps, and every in-place write then goes through the undo log (core/undo.ts)
 * so that a failed step can put it back. At most one table is owned at a time, so
 * ownership is one slot (a WeakSet's add and delete cost more per step); a table left
 * owned by a step that failed is unreachable from every World.
 */
let owned: PagesTable | null = null;

/** A clone of `t` the caller may write in place until `disownPages`. */
export function ownPages(t: PagesTable): PagesTable {
  owned = t.clone();
  return owned;
}

export function ownsPages(t: PagesTable): boolean {
  return owned === t;
}

/** Ends the ownership of `t` (null: of whichever table is owned, as the in-place stepper's release does). */
export function disownPages(t: PagesTable | null): void {
  if (t === null || owned === t) owned = null;
}

/** Replaces pages object `id` (null: removes it); `prev` is its current value (undefined: new). */
function setPages(d: Draft<World>, ctxId: number, p: Pages | null, id: number, prev: Pages | undefined): void {
  const ctx = d.ctxs[ctxId]!;
  const t = ctx.pages as PagesTable;
  if (owned === t) {
    undoLog()?.record(t, id, prev ?? ABSENT);
    if (p) t.set(id, p, true);
    else t.delete(id);
    return;
  }
  ctx.pages = p ? t.with(id, p, true) : t.without(id);
}

export function getPages(d: Draft<World> | World, ctxId: number, id: number): Pages {
  const p = (d.ctxs[ctxId]!.pages as PagesTable).get(id);
  if (!p) throw new Error(`pages ${id} missing in ctx ${ctxId}`);
  return p;
}

/** Charges `n` more pinned pages to the source's accounting; refuses over RLIMIT_MEMLOCK. */
function charge(d: Draft<World>, p: Pages, n: number): PinRefusal | null {
  // The kernel keeps the source task and mm alive by reference; once the source
  // process is gone, its mm-side counters go with it (the user's stay).
  const live = d.procs[p.pid];
  const proc = live && live.serial === p.serial ? live : undefined;
  const undo = undoLog();
  if (p.account === 'user') {
    let acct = d.users[p.uid];
    if (!acct) {
      undo?.record(d.users, p.uid, ABSENT);
      acct = d.users[p.uid] = { lockedPages: 0 };
    }
    if (n > 0 && acct.lockedPages + n > limitPages(d, proc, p))
      return { errno: 'ENOMEM', reason: `pinning ${n} more pages would take uid ${p.uid} to ${acct.lockedPages + n} locked pages, over RLIMIT_MEMLOCK (${limitPages(d, proc, p)} pages)` };
    undo?.record(acct, 'lockedPages', acct.lockedPages);
    acct.lockedPages += n;
  } else if (p.account === 'mm' && proc) {
    if (n > 0 && proc.lockedPages + n > limitPages(d, proc, p))
      return { errno: 'ENOMEM', reason: `pinning ${n} more pages would take pid ${p.pid} to ${proc.lockedPages + n} locked pages, over RLIMIT_MEMLOCK (${limitPages(d, proc, p)} pages)` };
    undo?.record(proc, 'lockedPages', proc.lockedPages);
    proc.lockedPages += n;
  }
  if (proc) {
    undo?.record(proc, 'pinnedPages', proc.pinnedPages);
    proc.pinnedPages += n;
  }
  return null;
}

/** RLIMIT_MEMLOCK in pages: the live source task's, else the one saved at creation. */
function limitPages(d: Draft<World>, proc: Draft<World>['procs'][number] | undefined, p: Pages): number {
  return Number((proc?.memlock ?? p.memlock) / pageSize(d));
}

/** A pages object with new users, pinned runs and area count (one hidden class: no spreads). */
function pagesWith(p: Pages, users: readonly PinUser[], pinned: readonly PinnedRun[], areas: number): Pages {
  return { id: p.id, pid: p.pid, serial: p.serial, uid: p.uid, va: p.va, npages: p.npages, writable: p.writable, account: p.account, memlock: p.memlock, areas, users, pinned };
}

/**
 * Touches page indexes [g0, g1] of `p` (none of them pinned yet): their new runs in
 * index order, or the reason when the memory cannot be pinned. The caller pins the new
 * runs only once the charge is accepted, so a MAP refused over RLIMIT_MEMLOCK pins
 * nothing (what any failed step did pin, core/step.ts drops from Memory's shared log).
 */
function pinGap(d: Draft<World>, p: Pages, PAGE: bigint, g0: number, g1: number): PinnedRun[] | string {
  const va = g0 === 0 ? p.va : p.va + BigInt(g0) * PAGE;
  const end = va + BigInt(g1 - g0 + 1) * PAGE;
  // Memory touched before (a re-mapped buffer) is one run of one extent: touch's answer
  // without its result objects.
  const one = backedExtent(memOf(d), p.pid, va, end, p.writable);
  if (one !== null) return [{ first: g0, last: g1, pa: one.va === va ? one.pa : one.pa + (va - one.va) }];
  const t = touch(memOf(d), p.pid, va, end - va, p.writable);
  if (!t.ok) return t.why;
  // Offsets and lengths as numbers: exact, since the extents now have frames (below 2^53).
  const P = Number(PAGE);
  const out = t.extents.map((e): PinnedRun => {
    const f = g0 + Number(e.va - va) / P;
    return { first: f, last: f + Number(e.length) / P - 1, pa: e.pa };
  });
  d.mem = t.mem;
  return out;
}

/**
 * `p` with one more user of page indexes [first, last]: pins what is not yet pinned
 * (EFAULT when the memory is not mapped or not writable as needed; ENOMEM over the
 * limit). Writes memory and the charge, not the pages table: the caller stores the result.
 */
export function withPinUser(d: Draft<World>, p: Pages, user: PinUser): Pages | PinRefusal {
  const PAGE = pageSize(d);
  let added: PinnedRun[];
  let fresh: number;
  if (p.pinned.length === 0) {
    // Nothing pinned yet (the common case: the first user of a new pages object): one gap.
    const runs = pinGap(d, p, PAGE, user.first, user.last);
    if (typeof runs === 'string') return { errno: 'EFAULT', reason: `cannot pin user memory: ${runs}` };
    added = runs;
    fresh = user.last - user.first + 1;
  } else {
    added = [];
    fresh = 0;
    for (const [g0, g1] of gaps(p.pinned, user.first, user.last)) {
      const runs = pinGap(d, p, PAGE, g0, g1);
      if (typeof runs === 'string') return { errno: 'EFAULT', reason: `cannot pin user memory: ${runs}` };
      for (const r of runs) added.push(r);
      fresh += g1 - g0 + 1;
    }
  }
  const refused = charge(d, p, fresh);
  if (refused) return refused;
  d.mem = memOf(d).pinRuns(added, PAGE);
  const pinned = p.pinned.length === 0 ? added : added.length === 0 ? p.pinned : [...p.pinned, ...added].sort((a, b) => a.first - b.first);
  return pagesWith(p, p.users.length === 0 ? [user] : [...p.users, user], pinned, p.areas);
}

/** Adds a user of page indexes [first, last] to pages object `id` (see withPinUser). */
export function addPinUser(d: Draft<World>, ctxId: number, id: number, user: PinUser): PinRefusal | null {
  const p = getPages(d, ctxId, id);
  const next = withPinUser(d, p, user);
  if (!isPages(next)) return next;
  setPages(d, ctxId, next, id, p);
  return null;
}

export function isPages(r: Pages | PinRefusal): r is Pages {
  return (r as Partial<PinRefusal>).errno === undefined;
}

/**
 * `p` without user `key`; pages no other user covers are unpinned ("unpin follows
 * unmap": callers unmap first). Writes memory and the charge, not the pages table.
 */
function withoutPinUser(d: Draft<World>, p: Pages, key: string): Pages {
  if (p.users.length === 1) {
    unpinLast(d, p, key);
    return pagesWith(p, [], [], p.areas);
  }
  const PAGE = pageSize(d);
  let mem = memOf(d);
  let freed = 0;
  const users = p.users.filter((u) => u.key !== key);
  if (users.length === p.users.length) throw new Error(`pin user ${key} not on pages ${p.id}`);
  const keep: PinnedRun[] = [];
  const cover = union(users);
  for (const r of p.pinned) {
    // Split each run into covered pieces (kept) and uncovered pieces (unpinned), by
    // interval arithmetic: the cost follows runs and users, never the page count.
    const pieces: PinnedRun[] = [];
    let gone = 0;
    const piece = (first: number, last: number, cov: boolean) => {
      if (cov) pieces.push({ first, last, pa: r.pa + BigInt(first - r.first) * PAGE });
      else gone += last - first + 1;
    };
    let i = r.first;
    for (const [c0, c1] of cover) {
      if (c1 < i) continue;
      if (c0 > r.last) break;
      if (c0 > i) piece(i, c0 - 1, false);
      const e = Math.min(c1, r.last);
      piece(Math.max(c0, i), e, true);
      i = e + 1;
      if (i > r.last) break;
    }
    if (i <= r.last) piece(i, r.last, false);
    if (!gone) {
      keep.push(r);
      continue;
    }
    // The memory's pin index holds whole runs: pin the kept pieces, then unpin the run.
    for (const k of pieces) {
      mem = mem.pinFrames(k.pa, BigInt(k.last - k.first + 1) * PAGE);
      keep.push(k);
    }
    mem = mem.unpinFrames(r.pa, BigInt(r.last - r.first + 1) * PAGE);
    freed += gone;
  }
  d.mem = mem;
  if (charge(d, p, -freed)) throw new Error('uncharge cannot fail');
  return pagesWith(p, users, keep, p.areas);
}

/**
 * withoutPinUser's writes when `key` is the only user (the common case: one area per
 * pages object): every run goes whole.
 */
function unpinLast(d: Draft<World>, p: Pages, key: string): void {
  if (p.users[0]!.key !== key) throw new Error(`pin user ${key} not on pages ${p.id}`);
  d.mem = memOf(d).unpinRuns(p.pinned, pageSize(d));
  if (charge(d, p, -npinned(p))) throw new Error('uncharge cannot fail');
}

/** Removes a user of pages object `id` (see withoutPinUser). */
export function removePinUser(d: Draft<World>, ctxId: number, id: number, key: string): void {
  const p = getPages(d, ctxId, id);
  setPages(d, ctxId, withoutPinUser(d, p, key), id, p);
}

/**
 * The physical runs backing bytes [off, off+length) of a pages object (all must be
 * pinned), as IOVA -> PA runs for a mapping whose byte `off` sits at `iova`.
 */
export function physOf(p: Pages, pageSz: bigint, off: bigint, length: bigint, iova: bigint): { iova: bigint; pa: bigint; length: bigint }[] {
  const P = Number(pageSz);
  // Byte offsets inside the object as numbers when every one is exact (any object
  // pinned whole is: its pinned frames lie below 2^53): ~3 bigints per run, not ~10.
  const exact = Number.isSafeInteger(p.npages * P);
  if (exact && p.pinned.length === 1 && off === 0n && Number(length) === p.npages * P) {
    // The whole object in one run (a MAP's own pages, touched before): the given
    // bigints are the answer, and the array is made at its size.
    const r = p.pinned[0]!;
    if (r.first === 0 && r.last === p.npages - 1) return [{ iova, pa: r.pa, length }];
  }
  const o = exact ? Number(off) : 0;
  const end = exact ? o + Number(length) : 0;
  const endBig = off + length;
  const out: { iova: bigint; pa: bigint; length: bigint }[] = [];
  for (const r of p.pinned) {
    if (exact) {
      const rs = r.first * P;
      const re = (r.last + 1) * P;
      const s = rs > o ? rs : o;
      const e = re < end ? re : end;
      if (e > s) out.push({ iova: iova + BigInt(s - o), pa: s === rs ? r.pa : r.pa + BigInt(s - rs), length: BigInt(e - s) });
      continue;
    }
    const rs = BigInt(r.first) * pageSz;
    const re = BigInt(r.last + 1) * pageSz;
    const s = rs > off ? rs : off;
    const e = re < endBig ? re : endBig;
    if (e > s) out.push({ iova: iova + (s - off), pa: r.pa + (s - rs), length: e - s });
  }
  return out;
}

/**
 * A new pages object over the user range, referenced by `areas` areas from the start.
 * Its id is taken but it is not stored: the caller stores it (storePages), pinned or not.
 */
export function newPages(d: Draft<World>, ctxId: number, pid: number, userVa: bigint, length: bigint, writable: boolean, areas = 0): { pages: Pages; pageOffset: bigint } {
  const ctx = d.ctxs[ctxId]!;
  const PAGE = pageSize(d);
  const va = (userVa / PAGE) * PAGE;
  const pageOffset = userVa - va;
  const npages = Number((pageOffset + length + PAGE - 1n) / PAGE);
  const proc = d.procs[pid]!;
  const id = ctx.nextPages++;
  const account = proc.caps.includes('IPC_LOCK') ? 'none' : ctx.accountMode;
  return { pages: { id, pid, serial: proc.serial, uid: proc.uid, va, npages, writable, account, memlock: proc.memlock, areas, users: [], pinned: [] }, pageOffset };
}

/** Stores pages object `p`; `prev` is the value it replaces (undefined: it is new). */
export function storePages(d: Draft<World>, ctxId: number, p: Pages, prev: Pages | undefined): void {
  setPages(d, ctxId, p, p.id, prev);
}

/** A new pages object over the user range, stored (see newPages). */
export function createPages(d: Draft<World>, ctxId: number, pid: number, userVa: bigint, length: bigint, writable: boolean, areas = 0): { id: number; pageOffset: bigint } {
  const { pages, pageOffset } = newPages(d, ctxId, pid, userVa, length, writable, areas);
  setPages(d, ctxId, pages, pages.id, undefined);
  return { id: pages.id, pageOffset };
}

export function refPages(d: Draft<World>, ctxId: number, id: number, delta: number): void {
  const p = getPages(d, ctxId, id);
  putRef(d, ctxId, p, p, p.areas + delta);
}

/**
 * An area lets go of pages object `id`: its pin user `key` goes first (null: it has
 * none), then its reference, with one table write (the pages object is freed at 0).
 */
export function unrefPages(d: Draft<World>, ctxId: number, id: number, key: string | null): void {
  const p = getPages(d, ctxId, id);
  if (key !== null && p.areas === 1 && p.users.length === 1) {
    // The last area and the last user (UNMAP of an area that had its own pages): freed
    // without building the emptied pages object first.
    unpinLast(d, p, key);
    setPages(d, ctxId, null, id, p);
    return;
  }
  putRef(d, ctxId, key === null ? p : withoutPinUser(d, p, key), p, p.areas - 1);
}

/** Stores `p` (the new value of `prev`) with `areas` references, or frees it at 0. */
function putRef(d: Draft<World>, ctxId: number, p: Pages, prev: Pages, areas: number): void {
  if (areas < 0) throw new Error('pages refcount underflow');
  if (areas === 0) {
    if (p.users.length || p.pinned.length) throw new Error(`pages ${p.id} released with pins`);
    setPages(d, ctxId, null, p.id, prev);
  } else setPages(d, ctxId, pagesWith(p, p.users, p.pinned, areas), p.id, prev);
}

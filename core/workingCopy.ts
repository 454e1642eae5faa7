/*
 * workingCopy.ts: immer-free steps for IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP by explicit
 * path copying. Before the (unchanged) handler runs, the World is copied along exactly
 * the paths these handlers write:
 *
 *   World -> ctxs -> the ctx (pages, nextPages) -> objects -> the IOAS -> its data (areas)
 *   World -> procs -> MAP: the caller; UNMAP: every process (the removed pages' sources)
 *   World -> users -> their users (lockedPages; a missing record is added to the copy)
 *   World -> mem, hw (replaced, never mutated)
 *
 * The ctx's pages table is a clone the step writes in place (ownPages) until `seal`.
 * After the handler, the fresh copies are frozen (shallowly) so that a write this path
 * forgot to copy throws instead of silently mutating an older World (`seal`), unless
 * freezing is off (core/freeze.ts).
 *
 * An op takes this path only when its writes are bounded by the list above; anything
 * else (a missing process, an unknown fd or object, an IOAS with accesses attached
 * whose unmap notifications write ACCESS objects, unmap-all, malformed ranges) returns
 * null and runs as an immer recipe instead.
 *
 * In place (an `InPlace` record, for a caller that never looks at an older World: the
 * replay loop): the copy also takes every process and user record, and the next MAP or
 * UNMAP on the same IOAS of the same World writes that copy again instead of making a
 * new one; its pages table stays owned, so writes to it go in place from step to step.
 * Because a failed step must still leave the World as it was, a reused copy saves the
 * fields the list above lets a handler replace whole, and the handler's writes below
 * them (page counters, user records, pages entries) go through the undo log
 * (core/undo.ts); a failure restores both. hw writes the page-table pages it made
 * since this copy was taken in place too, through the same log (an hw epoch per copy,
 * open only during a reused step: core/hwsync.ts, hw/own.ts).
 */
import { U64_MAX, type Input, type InputOf, type OpName } from '../events/index.js';
import { shallowCtx, shallowProc, shallowWorld, type Ctx, type IoasObj, type Mutable, type Obj, type Proc, type UserAcct, type World } from './world.js';
import { disownPages, ownPages, ownsPages, type PagesTable } from './pages.js';
import { UndoLog, setUndoLog } from './undo.js';
import { freezing } from './freeze.js';
import { hwCloseEpoch, hwNewEpoch, hwOpenEpoch } from './hwsync.js';

export interface WorkingCopy {
  /** A copy of the World whose write paths for this op are fresh, mutable objects. */
  readonly world: World;
  /** Freezes the fresh copies (call once the handler is done with them). */
  seal(): void;
  /** The handler failed: puts back whatever it wrote where an older World can see it. */
  rollback(): void;
}

export type Copier = (w: World, input: Input, inPlace?: InPlace) => WorkingCopy | null;

/**
 * The copy an in-place stepper may write again: its World, and the ctx and IOAS whose
 * path it copied (with every process and user record). Valid while the stepper's World
 * is still that object (core/step.ts keeps it so across DMAs; an immer step makes a
 * new World, and the next MAP or UNMAP copies afresh).
 */
export class InPlace {
  world: World | null = null;
  ctx = -1;
  ioas = -1;
  /** The hw epoch of this copy (core/hwsync.ts): hw nodes made by its reused steps. */
  hwEpoch = 0;
  readonly undo = new UndoLog();
  /** The working copy its reused steps write through (core/workingCopy.ts Reused). */
  readonly reused = new Reused(this.undo);

  /** The own copy is no longer the World being stepped (an immer step made a new one). */
  release(): void {
    if (this.world !== null) disownPages(null);
    this.world = null;
  }
}

/** The ctx and IOAS an ioctl on (pid, fd, ioas) would act on, when all of them exist. */
function target(w: World, pid: number, fd: number, ioasId: number): { ctx: Ctx; io: IoasObj } | null {
  const fileId = w.procs[pid]?.fds[fd];
  if (fileId === undefined) return null;
  const file = w.files[fileId];
  if (!file || file.kind !== 'iommufd') return null;
  const ctx = w.ctxs[file.ctx];
  const io = ctx?.objects[ioasId];
  if (!ctx || !io || io.type !== 'ioas') return null;
  return { ctx, io };
}

function copyPaths(w: World, ctx: Ctx, io: IoasObj, pids: readonly number[], uids: readonly number[], keepOwned: boolean): WorkingCopy {
  // Records copied field by field (one hidden class each), plain stores after each
  // spread, and sealing in a class rather than a closure over these locals: together
  // ~10x cheaper in V8 than spreads of Worlds made by immer (measured).
  const ioCopy: IoasObj = { ...io, data: { ...io.data } };
  const objects: Record<number, Obj> = { ...ctx.objects };
  objects[io.id] = ioCopy;
  const ctxCopy = shallowCtx(ctx);
  ctxCopy.objects = objects;
  ctxCopy.pages = ownPages(ctx.pages);
  const ctxs: Record<number, Ctx> = { ...w.ctxs };
  ctxs[ctx.id] = ctxCopy;
  const procs: Record<number, Proc> = { ...w.procs };
  for (const pid of pids) if (procs[pid]) procs[pid] = shallowProc(procs[pid]!);
  const users: Record<number, UserAcct> = { ...w.users };
  for (const uid of uids) if (users[uid]) users[uid] = { ...users[uid]! };
  const world = shallowWorld(w);
  world.ctxs = ctxs;
  world.procs = procs;
  world.users = users;
  return new Copy(world, [ioCopy.data, ioCopy, objects, ctxCopy, ctxs], keepOwned ? null : ctxCopy.pages, procs, users, pids, uids);
}

class Copy implements WorkingCopy {
  constructor(
    readonly world: World,
    /** The fresh objects on the IOAS path, innermost first. */
    private readonly path: readonly object[],
    /** The ctx's pages table, owned for this step (core/pages.ts ownPages); null: the in-place stepper keeps owning it. */
    private readonly pages: PagesTable | null,
    private readonly procs: Record<number, Proc>,
    private readonly users: Record<number, UserAcct>,
    private readonly pids: readonly number[],
    private readonly uids: readonly number[],
  ) {}

  rollback(): void {
    // Nothing to undo: the older World never saw these copies.
  }

  seal(): void {
    if (this.pages) disownPages(this.pages);
    if (!freezing()) return;
    for (const o of this.path) Object.freeze(o);
    for (const pid of this.pids) if (this.procs[pid]) Object.freeze(this.procs[pid]);
    // uids: the copied records and any the handler added (charge creates a missing one).
    for (const uid of this.uids) if (this.users[uid]) Object.freeze(this.users[uid]);
    for (const o of [this.procs, this.users, this.world]) Object.freeze(o);
  }
}

/**
 * The own copy written again: the fields a MAP or UNMAP replaces whole are saved here,
 * and the writes below them (page counters, user records, pages entries) go to the undo
 * log (core/undo.ts), so a failure can put everything back. One per InPlace, begun anew
 * by each reused step (steps never nest, and step drops it after seal or rollback).
 */
class Reused implements WorkingCopy {
  world: World = null as unknown as World;
  private mem: World['mem'] = null as unknown as World['mem'];
  private hw: World['hw'] = null as unknown as World['hw'];
  private pages: PagesTable | null = null;
  private nextPages = 0;
  private areas: unknown = null;
  private ctx: Mutable<Ctx> | null = null;
  private data: { areas: unknown } | null = null;

  constructor(private readonly undo: UndoLog) {}

  begin(world: World, ctx: Mutable<Ctx>, io: IoasObj, hwEpoch: number): this {
    const w = world as Mutable<World>;
    this.world = world;
    this.ctx = ctx;
    const data = io.data as unknown as { areas: unknown };
    this.data = data;
    this.mem = w.mem;
    this.hw = w.hw;
    const pages = ctx.pages;
    this.pages = pages;
    this.nextPages = ctx.nextPages;
    this.areas = data.areas;
    // The table stays owned from step to step; a persistent step in between (tests run
    // both side by side) may have taken the one ownership slot.
    if (!ownsPages(pages)) ctx.pages = ownPages(pages);
    const undo = this.undo;
    undo.clear();
    setUndoLog(undo);
    // hw writes its own table pages of this copy in place, through the same log.
    hwOpenEpoch(hwEpoch, undo);
    return this;
  }

  seal(): void {
    hwCloseEpoch();
    setUndoLog(null);
  }

  rollback(): void {
    hwCloseEpoch();
    setUndoLog(null);
    this.undo.rollback();
    const w = this.world as Mutable<World>;
    w.mem = this.mem;
    w.hw = this.hw;
    this.ctx!.pages = this.pages!;
    this.ctx!.nextPages = this.nextPages;
    this.data!.areas = this.areas;
  }
}

const ids = (r: object): number[] => Object.keys(r).map(Number);

/**
 * The working copy for an op on (ctx, io): the in-place stepper's own copy again when it
 * is still the World's, else fresh copies of the path with the records of `pids` and
 * `uids` (every process and user record when they are not given, or in place, so that
 * the next op can reuse the copy whoever it charges).
 */
function copyFor(w: World, ctx: Ctx, io: IoasObj, inPlace: InPlace | undefined, pids?: number[], uids?: number[]): WorkingCopy {
  if (!inPlace || freezing()) return copyPaths(w, ctx, io, pids ?? ids(w.procs), uids ?? ids(w.users), false);
  // ctx and io are the World's own records here (target read them from w), and the
  // own copy's records are its fresh, writable ones.
  if (inPlace.world === w && inPlace.ctx === ctx.id && inPlace.ioas === io.id) return inPlace.reused.begin(w, ctx as Mutable<Ctx>, io, inPlace.hwEpoch);
  const copy = copyPaths(w, ctx, io, ids(w.procs), ids(w.users), true);
  inPlace.world = copy.world;
  inPlace.ctx = ctx.id;
  inPlace.ioas = io.id;
  // Nothing hw made before is written in place: only what this copy's steps make.
  inPlace.hwEpoch = hwNewEpoch();
  return copy;
}

/** MAP: a new pages object of the caller (its proc and uid are charged when domains pin it). */
function mapCopy(w: World, input: InputOf<'IOMMU_IOAS_MAP'>, inPlace?: InPlace): WorkingCopy | null {
  const proc = w.procs[input.pid];
  if (!proc) return null;
  const t = target(w, input.pid, input.f.fd, input.f.ioas_id);
  if (!t) return null;
  return copyFor(w, t.ctx, t.io, inPlace, [input.pid], [proc.uid]);
}

/** UNMAP of a range of an IOAS without accesses: the removed areas' pages sources are uncharged. */
function unmapCopy(w: World, input: InputOf<'IOMMU_IOAS_UNMAP'>, inPlace?: InPlace): WorkingCopy | null {
  const f = input.f;
  if (!w.procs[input.pid]) return null;
  if (f.iova === 0n && f.length === U64_MAX) return null;
  if (f.iova >= U64_MAX || f.length >= U64_MAX || f.length === 0n || f.iova + f.length - 1n > U64_MAX) return null;
  const t = target(w, input.pid, f.fd, f.ioas_id);
  if (!t || t.io.data.accesses.length) return null;
  // The removed areas' pages may come from any process (COPY shares pages across
  // IOASes): every process and user record is copied (a few), rather than planning the
  // UNMAP here a second time to find which.
  return copyFor(w, t.ctx, t.io, inPlace);
}

/** Ops that can run on a working copy instead of an immer draft (see makeStep). */
export const COPIERS: Partial<Record<OpName, Copier>> = {
  IOMMU_IOAS_MAP: mapCopy as Copier,
  IOMMU_IOAS_UNMAP: unmapCopy as Copier,
};

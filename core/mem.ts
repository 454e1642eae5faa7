/*
 * mem.ts: process memory and physical frames. Each process has VMAs (from mmap)
 * and page extents (virtual ranges that already have frames: touched or pinned).
 * Frames come from one bump allocator and are never reused, so a stale
 * translation to a freed frame can never silently reach somebody else's memory:
 * the frame shows as free (owner none), and the isolation checks see it.
 *
 * Frame placement keeps pa ≡ va (mod 2 MiB), or mod 1 GiB for extents of 1 GiB or
 * more (like THP and hugetlb backing), so IOMMU domains can use large pages. A
 * forked child starts with copies of the parent's VMAs and no frames: copy-on-write
 * is broken eagerly at the child's first touch, so pages the parent pinned stay the
 * parent's.
 *
 * Long-term pins (FOLL_LONGTERM) are not counted on the frame extents (that split
 * them at every pin edge): Memory keeps a separate index of the pinned PA runs, one
 * entry per pinned run of a pages object. Pin and unpin append to a change list that
 * is compacted every few thousand changes and folded into the sorted index when read
 * (PinLog).
 * The pin count of a frame is the number of entries covering it.
 *
 * Invariants: VMAs of a process never overlap; page extents are page-aligned and lie
 * inside VMAs (or are kept after munmap only while pinned, marked unmapped); every
 * frame extent has exactly one owner; the pin index holds exactly the pinned runs of
 * all pages objects.
 */
import { BTree, emptyBig } from './btree.js';

const PAGE = 4096n;
const MiB2 = 2n * 1024n * 1024n;
const GiB = 1024n * 1024n * 1024n;

export interface Vma {
  readonly start: bigint;
  readonly length: bigint;
  readonly prot: number; // READ=1 WRITE=2 EXEC=4
  readonly hugetlb: boolean;
  readonly shared: boolean;
}

export interface PageExtent {
  readonly va: bigint;
  readonly length: bigint;
  readonly pa: bigint;
}

export type FrameOwner = { readonly kind: 'proc'; readonly pid: number; readonly va: bigint } | { readonly kind: 'kernel'; readonly dev: string };

export interface FrameExtent {
  readonly pa: bigint;
  readonly length: bigint;
  readonly owner: FrameOwner;
  /** Still mapped by its owner (false: kept alive only by pins). */
  readonly mapped: boolean;
}

export class ProcMem {
  constructor(
    readonly vmas: BTree<bigint, Vma>,
    readonly pages: BTree<bigint, PageExtent>,
  ) {}
}

const emptyProc = () => new ProcMem(emptyBig<Vma>(), emptyBig<PageExtent>());

/**
 * The pinned PA runs: start PA to the lengths of the runs starting there (sorted, a
 * multiset: two pages objects may pin the same frames). Keys and lengths are numbers
 * (exact: every PA is below 2^53, see allocFrames): number keys sit unboxed in the
 * tree's key arrays, where bigint keys cost a pointer chase per comparison.
 */
export type PinIndex = BTree<number, readonly number[]>;

const cmpNum = (a: number, b: number): number => a - b;
/** Frames are never placed at or above 2^53, so PAs and lengths convert exactly. */
const PA_LIMIT = 1n << 53n;

/**
 * The run lengths at one start PA in a PinBase: the length itself when one run starts
 * there (most PAs: no array to allocate per change), else the sorted lengths (two or more).
 */
type BaseLens = number | readonly number[];

/**
 * A PinBase keys a PA by PA / KEY_UNIT (exact: a power of two), the page frame number
 * for a page-aligned PA: below 2^31 for PAs below 8 TiB, a small integer that a Map
 * hashes and compares in place, where a PA above 2^31 is a heap number allocated for
 * every lookup and compared through a pointer.
 */
const KEY_UNIT = 4096;

/**
 * The compacted pins: start PA / KEY_UNIT -> run lengths (unordered keys: no sorting,
 * no tree building on the hot path). Its Map is never written after construction.
 */
class PinBase {
  constructor(readonly runs: ReadonlyMap<number, BaseLens>) {}
}

/**
 * Pins and unpins not yet compacted into `base`, oldest first, as two Float64Arrays
 * (contiguous: compaction reads them without chasing a pointer per change), entries
 * [0, end) in use. A replay pins and unpins on every MAP and UNMAP but reads the index
 * rarely (munmap of pinned memory, MD_CHECK_REFS, invariants, the state hash), so a
 * change costs two stores. A log made by compaction is allocated at its full size once
 * (no growth copies along a history); a copy starts small and doubles.
 *
 * A log is shared by every Memory of one history: a Memory sees its first `count`
 * entries, which never change once pushed. Appending from a Memory that sees the whole
 * log pushes in place (a linear history); one that sees less (an older World stepped
 * again, or a World put back after a failed step that had pinned) copies what it sees
 * into a new log first. Every COMPACT_EVERY changes the log is folded into a new base.
 */
class PinLog {
  /** The sorted indexes built from this log, by entry count (null: none yet). */
  reads: Map<number, PinIndex> | null = null;
  /** The newest of them: its entry count and tree. */
  lastRead: { count: number; tree: PinIndex } | null = null;

  /** Start PAs. */
  pa: Float64Array;
  /** The run's length; negative for an unpin. */
  len: Float64Array;

  constructor(
    readonly base: PinBase,
    capacity: number,
    /** How many entries are in use. */
    public end = 0,
  ) {
    this.pa = new Float64Array(capacity);
    this.len = new Float64Array(capacity);
  }

  push(pa: number, len: number): void {
    const i = this.end;
    if (i === this.pa.length) {
      // Doubling: a copy grows from its first entries; a compacted log rarely overflows.
      const pas = new Float64Array(2 * i + 64);
      const lens = new Float64Array(2 * i + 64);
      pas.set(this.pa);
      lens.set(this.len);
      this.pa = pas;
      this.len = lens;
    }
    this.pa[i] = pa;
    this.len[i] = len;
    this.end = i + 1;
  }
}

const COMPACT_EVERY = 16384;
/** A compacted log's size: COMPACT_EVERY changes and the runs of the op that passes it. */
const LOG_SIZE = COMPACT_EVERY + 64;
const EMPTY_LOG = new PinLog(new PinBase(new Map()), 0);
/** Past this many changes a read builds the index from a Map instead of editing a clone. */
const REBUILD_AFTER = 32;

/** The run lengths at a PA after one change (len < 0: unpin); null when none is left. */
function applyChange(lens: readonly number[] | undefined, pa: number, len: number): readonly number[] | null {
  // Plain copy loops: a PA commonly holds several runs (a buffer re-mapped while still
  // mapped), and sort/filter with callbacks cost several times more here (measured).
  if (len > 0) {
    if (!lens) return [len];
    const out = new Array<number>(lens.length + 1);
    let i = 0;
    for (; i < lens.length && lens[i]! <= len; i++) out[i] = lens[i]!;
    out[i] = len;
    for (; i < lens.length; i++) out[i + 1] = lens[i]!;
    return out;
  }
  const at = lens ? lens.indexOf(-len) : -1;
  if (!lens || at < 0) throw new Error(`unpin of unpinned run 0x${pa.toString(16)}+0x${(-len).toString(16)}`);
  if (lens.length === 1) return null;
  const out = new Array<number>(lens.length - 1);
  for (let i = 0, j = 0; i < lens.length; i++) if (i !== at) out[j++] = lens[i]!;
  return out;
}

/** Applies entries [from, to) of `log` in order to `into`, an index the caller owns. */
function applyAll(into: PinIndex, log: PinLog, from: number, to: number): void {
  const pas = log.pa;
  const lens = log.len;
  for (let i = from; i < to; i++) {
    const pa = pas[i]!;
    const next = applyChange(into.get(pa), pa, lens[i]!);
    if (next) into.set(pa, next);
    else into.delete(pa);
  }
}

/**
 * applyAll on a base's Map (compaction, and reads past REBUILD_AFTER changes): a PA with
 * one run holds its length, not an array, so the common pin and unpin allocate nothing.
 */
function applyAllBase(into: Map<number, BaseLens>, log: PinLog, from: number, to: number): void {
  const pas = log.pa;
  const lens = log.len;
  for (let i = from; i < to; i++) {
    const pa = pas[i]!;
    const len = lens[i]!;
    const k = pa / KEY_UNIT;
    const cur = into.get(k);
    if (typeof cur === 'number') {
      if (len > 0) into.set(k, cur <= len ? [cur, len] : [len, cur]);
      else if (cur === -len) into.delete(k);
      else applyChange([cur], pa, len); // throws: not pinned
    } else if (cur === undefined) {
      if (len > 0) into.set(k, len);
      else applyChange(undefined, pa, len); // throws: not pinned
    } else {
      // An array (two or more runs, or one from a tree's entries when a read rebuilds).
      const next = applyChange(cur, pa, len);
      if (next === null) into.delete(k);
      else into.set(k, next.length === 1 ? next[0]! : next);
    }
  }
}

/** A base's Map of the runs in `t`. */
function baseOf(t: PinIndex): Map<number, BaseLens> {
  const m = new Map<number, BaseLens>();
  for (const [pa, lens] of t.entries()) m.set(pa / KEY_UNIT, lens);
  return m;
}

/** The index of a base's Map (see BaseLens). */
function treeOf(runs: ReadonlyMap<number, BaseLens>): PinIndex {
  // No comparator: number keys in natural order take the tree's comparison fast path.
  const t = new BTree<number, readonly number[]>();
  for (const k of [...runs.keys()].sort(cmpNum)) {
    const v = runs.get(k)!;
    t.set(k * KEY_UNIT, typeof v === 'number' ? [v] : v);
  }
  return t;
}

/** The sorted index of a base, memoized (a pure function of it). */
const baseTrees = new WeakMap<PinBase, PinIndex>();

/** The sorted index for the first `count` entries of `log` over its base. */
function fold(log: PinLog, count: number): PinIndex {
  if (count === 0) {
    let t = baseTrees.get(log.base);
    if (!t) baseTrees.set(log.base, (t = treeOf(log.base.runs)));
    return t;
  }
  const hit = log.reads?.get(count);
  if (hit !== undefined) return hit;
  const last = log.lastRead;
  // Start from the newest index already built along the log when it is older: a
  // reader that looks after every change (the invariant checker) pays one change per read.
  const from = last !== null && last.count < count ? last : null;
  let t: PinIndex;
  if (from !== null && count - from.count <= REBUILD_AFTER) applyAll((t = from.tree.clone()), log, from.count, count);
  else {
    const runs = from !== null ? baseOf(from.tree) : new Map(log.base.runs);
    applyAllBase(runs, log, from !== null ? from.count : 0, count);
    t = treeOf(runs);
  }
  (log.reads ??= new Map()).set(count, t);
  log.lastRead = { count, tree: t };
  return t;
}

export class Memory {
  constructor(
    readonly procs: Readonly<Record<number, ProcMem>>,
    readonly frames: BTree<bigint, FrameExtent>,
    readonly nextPa: bigint,
    /** No pinned run was ever longer (bounds how far back a run covering a PA can start). */
    readonly maxPin: number = 0,
    /**
     * Frames were ever kept alive by pins after their owner unmapped them (sticky). While
     * false no frame is orphaned, so an unpin never has frames to free and skips the search.
     */
    readonly orphans: boolean = false,
    /** The pins as of the last compaction and the changes since (see PinLog). */
    private readonly pinLog: PinLog = EMPTY_LOG,
    /** How many of `pinLog`'s changes are this Memory's. */
    private readonly pinCount: number = 0,
  ) {}

  /** The pinned PA runs (built from the uncompacted changes on first read; see PinLog). */
  get pins(): PinIndex {
    return fold(this.pinLog, this.pinCount);
  }

  static empty(): Memory {
    // Low 4 GiB stay for the (unmodelled) kernel image and MMIO.
    return new Memory({}, emptyBig<FrameExtent>(), 0x1_0000_0000n);
  }

  private with(frames: BTree<bigint, FrameExtent>, orphans: boolean = this.orphans): Memory {
    return new Memory(this.procs, frames, this.nextPa, this.maxPin, orphans, this.pinLog, this.pinCount);
  }

  /**
   * The log to append to: this Memory's own when it sees all of it, else a copy of
   * what it sees (see PinLog).
   */
  private appendable(): PinLog {
    const log = this.pinLog;
    const n = this.pinCount;
    if (log.end === n && log !== EMPTY_LOG) return log;
    const copy = new PinLog(log.base, n + 64, n);
    copy.pa.set(log.pa.subarray(0, n));
    copy.len.set(log.len.subarray(0, n));
    if (log.lastRead !== null && log.lastRead.count <= this.pinCount) copy.lastRead = log.lastRead;
    return copy;
  }

  /** Where this Memory's pin log ends now; a step from it that fails passes it to forgetFailedPins. */
  pinLogEnd(): number {
    return this.pinLog.end;
  }

  /**
   * A step from this Memory failed and its result is thrown away: drops the pins that
   * step logged in place past this Memory's own entries, so that the next pin appends
   * instead of copying the log (and every World kept after it its own copy). When the
   * log already ran past this Memory's count at the step's start (`endAtStart`), the step
   * copied before appending and the entries past the count belong to other Memories:
   * nothing is dropped.
   */
  forgetFailedPins(endAtStart: number): void {
    const log = this.pinLog;
    const n = this.pinCount;
    if (endAtStart !== n || log.end === n) return;
    log.end = n;
    if (log.reads !== null) for (const c of [...log.reads.keys()]) if (c > n) log.reads.delete(c);
    if (log.lastRead !== null && log.lastRead.count > n) log.lastRead = null;
  }

  /** The Memory after `log` (appended to) got `count` changes; compacts every COMPACT_EVERY. */
  private logged(log: PinLog, count: number, maxPin: number): Memory {
    if (count < COMPACT_EVERY) return new Memory(this.procs, this.frames, this.nextPa, maxPin, this.orphans, log, count);
    const runs = new Map(log.base.runs);
    applyAllBase(runs, log, 0, count);
    return new Memory(this.procs, this.frames, this.nextPa, maxPin, this.orphans, new PinLog(new PinBase(runs), LOG_SIZE), 0);
  }

  /** Every pinned run meeting [pa, end), as [start, end) pairs in start order. */
  pinnedRuns(pa: bigint, end: bigint): [bigint, bigint][] {
    const out: [bigint, bigint][] = [];
    const p = Number(pa);
    const lo = p - this.maxPin + 1;
    this.pins.forRange(lo > 0 ? lo : 0, Number(end), false, (k, lens) => {
      for (const l of lens) if (k + l > p) out.push([BigInt(k), BigInt(k + l)]);
    });
    return out;
  }

  /** The long-term pin count of the byte at `pa`. */
  pinsAt(pa: bigint): number {
    return this.pinnedRuns(pa, pa + 1n).length;
  }

  /** The pinned parts of [pa, end): sorted, disjoint, merged intervals clipped to the range. */
  pinnedIn(pa: bigint, end: bigint): [bigint, bigint][] {
    const out: [bigint, bigint][] = [];
    for (const [s0, e0] of this.pinnedRuns(pa, end)) {
      const s = s0 > pa ? s0 : pa;
      const e = e0 < end ? e0 : end;
      const top = out[out.length - 1];
      if (top && s <= top[1]) {
        if (e > top[1]) top[1] = e;
      } else out.push([s, e]);
    }
    return out;
  }

  proc(pid: number): ProcMem {
    return this.procs[pid] ?? emptyProc();
  }

  withProc(pid: number, pm: ProcMem | null): Memory {
    const procs = { ...this.procs };
    if (pm) procs[pid] = pm;
    else delete procs[pid];
    return new Memory(procs, this.frames, this.nextPa, this.maxPin, this.orphans, this.pinLog, this.pinCount);
  }

  /** The owner of the byte at `pa`, or null when the frame is free. */
  ownerOf(pa: bigint): { owner: FrameOwner; offset: bigint } | null {
    const f = this.frames.valueOrNextLower(pa);
    if (f === undefined || pa >= f.pa + f.length) return null;
    return { owner: f.owner, offset: pa - f.pa };
  }

  /** Allocates a physically contiguous extent for `length` bytes. */
  allocFrames(length: bigint, owner: FrameOwner, congruentTo: bigint): { mem: Memory; pa: bigint } {
    const mod = length >= GiB ? GiB : MiB2;
    const want = ((congruentTo % mod) + mod) % mod;
    let pa = this.nextPa;
    const cur = pa % mod;
    pa += (want - cur + mod) % mod;
    // The simulated machine has 8 PiB of physical memory: PAs stay exact as numbers.
    if (pa + length > PA_LIMIT) throw new Error(`simulated physical memory (8 PiB) exhausted allocating 0x${length.toString(16)} bytes`);
    const frames = this.frames.clone();
    frames.set(pa, { pa, length, owner, mapped: true });
    return { mem: new Memory(this.procs, frames, pa + length, this.maxPin, this.orphans, this.pinLog, this.pinCount), pa };
  }

  /**
   * Applies `edit` to every frame extent piece inside [pa, pa+length), splitting
   * extents at the edges; a piece the edit returns null for is freed.
   */
  editFrames(pa: bigint, length: bigint, edit: (f: FrameExtent) => FrameExtent | null): Memory {
    const frames = this.frames.clone();
    const end = pa + length;
    const hit: FrameExtent[] = [];
    const first = frames.getPairOrNextLower(pa);
    if (first && first[1].pa + first[1].length > pa) hit.push(first[1]);
    frames.forRange(pa, end, false, (k, f) => {
      if (k !== first?.[0]) hit.push(f);
    });
    for (const f of hit) {
      const fe = f.pa + f.length;
      frames.delete(f.pa);
      if (f.pa < pa) frames.set(f.pa, sliceFrame(f, f.pa, pa - f.pa));
      if (fe > end) frames.set(end, sliceFrame(f, end, fe - end));
      const cs = f.pa > pa ? f.pa : pa;
      const ce = fe < end ? fe : end;
      const piece = edit(sliceFrame(f, cs, ce - cs));
      if (piece) frames.set(cs, piece);
    }
    // Merge equal neighbours back so churn does not fragment the tree without bound.
    const keys: bigint[] = [];
    const lo = frames.getPairOrNextLower(pa);
    if (lo) keys.push(lo[0]);
    frames.forRange(pa, end, true, (k) => {
      if (k !== lo?.[0]) keys.push(k);
    });
    const after = frames.nextHigherPair(end);
    if (after && !keys.includes(after[0])) keys.push(after[0]);
    for (let j = keys.length - 1; j > 0; j--) {
      const a = frames.get(keys[j - 1]!);
      const b = frames.get(keys[j]!);
      if (a && b && mergeable(a, b)) {
        frames.delete(b.pa);
        frames.set(a.pa, { ...a, length: a.length + b.length });
      }
    }
    return this.with(frames);
  }

  /**
   * Applies `pinned` to the pinned parts of [pa, pa+length) and `free` to the rest
   * (editFrames on each part).
   */
  private editByPins(pa: bigint, length: bigint, pinned: (f: FrameExtent) => FrameExtent | null, free: (f: FrameExtent) => FrameExtent | null): Memory {
    const end = pa + length;
    let m: Memory = this;
    let cur = pa;
    for (const [s, e] of this.pinnedIn(pa, end)) {
      if (s > cur) m = m.editFrames(cur, s - cur, free);
      m = m.editFrames(s, e - s, pinned);
      cur = e;
    }
    if (cur < end) m = m.editFrames(cur, end - cur, free);
    return m;
  }

  /** The owner stopped mapping these frames: free the unpinned ones, keep pinned ones alive. */
  unmapFrames(pa: bigint, length: bigint): Memory {
    const m = this.editByPins(pa, length, (f) => ({ ...f, mapped: false }), () => null);
    if (m.orphans || this.pinnedIn(pa, pa + length).length === 0) return m;
    return m.with(m.frames, true);
  }

  /** A pinned run [pa, pa+length): one more pin on each of its frames. */
  pinFrames(pa: bigint, length: bigint): Memory {
    const log = this.appendable();
    const len = Number(length);
    log.push(Number(pa), len);
    return this.logged(log, log.end, len > this.maxPin ? len : this.maxPin);
  }

  /**
   * pinFrames of each run, in order, for runs of whole pages of `pageSize` bytes (a
   * pages object's new pinned runs): one Memory for the lot.
   */
  pinRuns(runs: readonly { readonly first: number; readonly last: number; readonly pa: bigint }[], pageSize: bigint): Memory {
    if (runs.length === 0) return this;
    const log = this.appendable();
    const P = Number(pageSize);
    let maxPin = this.maxPin;
    for (const r of runs) {
      const len = (r.last - r.first + 1) * P;
      log.push(Number(r.pa), len);
      if (len > maxPin) maxPin = len;
    }
    return this.logged(log, log.end, maxPin);
  }

  /**
   * Unpins a run exactly as pinned; frames no longer mapped by their owner and no
   * longer pinned are freed.
   */
  unpinFrames(pa: bigint, length: bigint): Memory {
    // A run that was never pinned throws when the log is compacted (at the latest within
    // COMPACT_EVERY changes) or read, whichever comes first.
    const log = this.appendable();
    log.push(Number(pa), -Number(length));
    const m = this.logged(log, log.end, this.maxPin);
    if (!this.orphans) return m;
    // Frames kept alive only by pins (munmapped while pinned) may go now.
    const end = pa + length;
    let orphan = false;
    const first = this.frames.getPairOrNextLower(pa);
    if (first && first[1].pa + first[1].length > pa && !first[1].mapped) orphan = true;
    if (!orphan)
      this.frames.forRange(pa, end, false, (_, f) => {
        if (!f.mapped) orphan = true;
      });
    return orphan ? m.editByPins(pa, length, (f) => f, (f) => (f.mapped ? f : null)) : m;
  }

  /**
   * unpinFrames of each run, in order, for runs of whole pages of `pageSize` bytes (a
   * pages object's pinned runs): one Memory for the lot while no frame is orphaned.
   */
  unpinRuns(runs: readonly { readonly first: number; readonly last: number; readonly pa: bigint }[], pageSize: bigint): Memory {
    if (runs.length === 0) return this;
    if (this.orphans) {
      let m: Memory = this;
      for (const r of runs) m = m.unpinFrames(r.pa, BigInt(r.last - r.first + 1) * pageSize);
      return m;
    }
    const log = this.appendable();
    const P = Number(pageSize);
    for (const r of runs) {
      log.push(Number(r.pa), -(r.last - r.first + 1) * P);
    }
    return this.logged(log, log.end, this.maxPin);
  }
}

/** b continues a exactly: adjacent frames, same owner, contiguous VAs, same state. */
function mergeable(a: FrameExtent, b: FrameExtent): boolean {
  if (a.pa + a.length !== b.pa || a.mapped !== b.mapped) return false;
  const x = a.owner;
  const y = b.owner;
  // Kernel buffers stay separate: each is freed whole when its driver unbinds.
  if (x.kind !== 'proc' || y.kind !== 'proc') return false;
  return x.pid === y.pid && x.va + a.length === y.va;
}

function sliceFrame(f: FrameExtent, from: bigint, len: bigint): FrameExtent {
  const owner = f.owner.kind === 'proc' ? { ...f.owner, va: f.owner.va + (from - f.pa) } : f.owner;
  return { ...f, pa: from, length: len, owner };
}

export function vmaAt(pm: ProcMem, va: bigint): Vma | null {
  const v = pm.vmas.valueOrNextLower(va);
  if (v === undefined || va >= v.start + v.length) return null;
  return v;
}

/** First-fit placement of a new mapping, bottom-up from 4 GiB, 2 MiB aligned when large. */
export function findVmaHole(pm: ProcMem, length: bigint, huge: boolean): bigint {
  const align = huge || length >= MiB2 ? MiB2 : PAGE;
  let cur = 0x1_0000_0000n;
  for (const [, v] of pm.vmas.entries(0n)) {
    const aligned = ((cur + align - 1n) / align) * align;
    if (aligned + length <= v.start) return aligned;
    if (v.start + v.length > cur) cur = v.start + v.length;
  }
  return ((cur + align - 1n) / align) * align;
}

/** Removes [start, start+length) from an extent-keyed tree, splitting extents at the edges. */
export function cutRange<T extends { readonly length: bigint }>(
  tree: BTree<bigint, T>,
  start: bigint,
  length: bigint,
  keyOf: (t: T) => bigint,
  slice: (t: T, from: bigint, len: bigint) => T,
): { tree: BTree<bigint, T>; removed: T[] } {
  const end = start + length;
  const t = tree.clone();
  const removed: T[] = [];
  const first = t.getPairOrNextLower(start);
  const candidates: T[] = [];
  if (first && keyOf(first[1]) + first[1].length > start) candidates.push(first[1]);
  t.forRange(start, end, false, (k, v) => {
    if (k !== first?.[0]) candidates.push(v);
  });
  for (const v of candidates) {
    const vs = keyOf(v);
    const ve = vs + v.length;
    t.delete(vs);
    if (vs < start) t.set(vs, slice(v, vs, start - vs));
    if (ve > end) t.set(end, slice(v, end, ve - end));
    const cs = vs > start ? vs : start;
    const ce = ve < end ? ve : end;
    if (ce > cs) removed.push(slice(v, cs, ce - cs));
  }
  return { tree: t, removed };
}

export const sliceVma = (v: Vma, from: bigint, len: bigint): Vma => ({ ...v, start: from, length: len });
export const slicePages = (p: PageExtent, from: bigint, len: bigint): PageExtent => ({ va: from, length: len, pa: p.pa + (from - p.va) });

/**
 * The page extent backing all of [va, end) when one extent already does and one VMA
 * that allows the access holds the bytes; null otherwise (then only touch can tell
 * what happens). touch's answer in that case is this extent clipped to the bytes, and
 * Memory stays as it is. A replay re-maps buffers touched before, so this is the
 * common case of a pin, and it allocates nothing.
 */
export function backedExtent(mem: Memory, pid: number, va: bigint, end: bigint, write: boolean): PageExtent | null {
  const pm = mem.procs[pid];
  if (pm === undefined || end <= va) return null;
  const v = vmaAt(pm, va);
  if (v === null || end > v.start + v.length || !(v.prot & (write ? 2 : 3))) return null;
  // Extents are page-aligned, so one holding [va, end) holds its whole pages too.
  const e = pm.pages.valueOrNextLower(va);
  return e !== undefined && end <= e.va + e.length ? e : null;
}

/**
 * Resolves [va, va+length) of a process to physical extents, allocating frames for
 * parts not yet backed. Fails (EFAULT in the callers) when any byte is outside a VMA
 * or the VMA's protection does not allow the access.
 */
export function touch(
  mem: Memory, pid: number, va: bigint, length: bigint, write: boolean,
): { ok: true; mem: Memory; extents: PageExtent[] } | { ok: false; va: bigint; why: string } {
  const end = va + length;
  const one = backedExtent(mem, pid, va, end, write);
  if (one !== null) return { ok: true, mem, extents: [one.va === va && one.length === length ? one : slicePages(one, va, length)] };
  let pm = mem.proc(pid);
  // Check VMA coverage first so a failure leaves no allocation behind.
  for (let cur = va; cur < end; ) {
    const v = vmaAt(pm, cur);
    if (!v) return { ok: false, va: cur, why: `no mapping at 0x${cur.toString(16)} in pid ${pid}` };
    if (!(v.prot & 1) && !(v.prot & 2)) return { ok: false, va: cur, why: `0x${cur.toString(16)} is mapped PROT_NONE` };
    if (write && !(v.prot & 2)) return { ok: false, va: cur, why: `0x${cur.toString(16)} is mapped read-only` };
    cur = v.start + v.length;
  }
  // One pass over the existing extents in VA order (sorted and disjoint): gaps get
  // fresh frames, and every extent is clipped to the requested bytes as it goes.
  const pageStart = (va / PAGE) * PAGE;
  const pageEnd = ((end + PAGE - 1n) / PAGE) * PAGE;
  const out: PageExtent[] = [];
  let pages = pm.pages;
  let m = mem;
  let cloned = false;
  let cursor = pageStart;
  const clip = (e: PageExtent): void => {
    const s = e.va > va ? e.va : va;
    const t = e.va + e.length < end ? e.va + e.length : end;
    if (t > s) out.push(s === e.va && t - s === e.length ? e : slicePages(e, s, t - s));
  };
  const fill = (to: bigint): void => {
    if (to <= cursor) return;
    // A gap gets one physically contiguous extent, placed congruent to its VA.
    const a = m.allocFrames(to - cursor, { kind: 'proc', pid, va: cursor }, cursor);
    m = a.mem;
    if (!cloned) {
      pages = pages.clone();
      cloned = true;
    }
    const ext = { va: cursor, length: to - cursor, pa: a.pa };
    pages.set(cursor, ext);
    clip(ext);
  };
  const before = pm.pages.getPairOrNextLower(pageStart);
  let next = before && before[1].va + before[1].length > pageStart ? before[1] : pm.pages.nextHigherPair(pageStart)?.[1];
  while (next !== undefined && next.va < pageEnd) {
    fill(next.va);
    clip(next);
    cursor = next.va + next.length;
    next = cursor < pageEnd ? pm.pages.nextHigherPair(next.va)?.[1] : undefined;
  }
  fill(pageEnd);
  if (cloned) m = m.withProc(pid, new ProcMem(pm.vmas, pages));
  return { ok: true, mem: m, extents: out };
}

/** The Memory of a World or of its immer draft (immer stores it as an opaque value). */
export function memOf(w: { readonly mem: unknown }): Memory {
  return w.mem as Memory;
}

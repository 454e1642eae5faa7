// Persistent radix page table shared by all formats: 512-entry table pages whose slots
// hold nothing (undefined), a leaf (page / block / superpage) or a lower table page.
// map / unmap copy each table page they touch exactly once per operation (path copying),
// so cost follows the number of table entries written, never the number of bytes mapped.
// A table page keeps its slots in 16 chunks of 32 (absent while empty): a copy shares
// the chunks it does not write, so a small map copies 16 + 32 pointers per level, not 512.
// The chunk index and each chunk are only as long as their last present slot needs (a
// sparse page, like a root holding one slot, copies 1 + 1 pointers): most of what a map
// or unmap allocates is these path copies.
// A leaf is not an object but a packed code (see leafCode): a number, or for a pfn of
// 2^47 and above a bigint with the same layout, so writing a run of leaves allocates
// nothing per leaf (the codes of small pfns are small integers). A whole chunk of
// granule leaves with consecutive pfns and the same bits is stored as one number (a run
// chunk, see RunChunk): a large map writes one per 32 leaves, and copies of its page
// share it. A run of whole slots at one level is filled or cleared by one loop per
// chunk; a table page wholly inside an unmapped range is dropped (counted, never copied).
// In-place replay (hw/own.ts): while an epoch is open, a table, page or chunk made in
// that epoch is written in place (each write recorded in the epoch's undo log first), so
// a step of the in-place replay copies only what earlier epochs made; an emptied page
// may then come back from unmapIn as itself, with used = 0.
// Invariants: nodes and chunks reachable from a published PageTable are never written
// (an operation writes only chunks it created itself), except those of the open epoch
// (a page's tag, and its mask for its chunks); a leaf's pfn is aligned to its own
// size and its depth field is the depth of the slot holding it; a leaf code is a number
// exactly when its pfn < 2^47; a non-root table page is never empty (unmap frees it);
// a chunk or chunk index an unmap wrote ends with a present entry (it trims the rest);
// a run chunk sits only at granule depth and only with number codes;
// `nodes` and `leaves` always equal what a full traversal would count.

import { ENTRIES, PtFormat, RW, smallNumber, spanBytes } from './format.js';
import { type HwUndo, epochTag, undoSink, writableTag } from './own.js';

/**
 * A leaf PTE, packed: pfn * 64 + depth * 8 + bits, where bits = READ | WRITE (+ DIRTY
 * once a tracked DMA write went through it) and depth is the depth of the slot holding
 * it (0 = root table). A number (exact integer) while pfn < 2^47, else a bigint laid out
 * the same way. Never use int32 bitwise operators on a whole code: only `& 63` (exact,
 * ToInt32 keeps the low bits) to read the fields.
 */
export type PtLeaf = number | bigint;

export type PtSlot = PtNode | PtLeaf | undefined;

const LEAF_SHIFT = 6;
const LEAF_MUL = 64;
const LEAF_MUL_BIG = 64n;
/** First pfn whose code no longer fits below 2^53. */
export const SMALL_PFN_END = 2 ** (53 - LEAF_SHIFT);

/** The code of a leaf; pfn is an exact integer (< 2^53), prot <= 7, depth <= 7. */
export function leafCode(pfn: number, prot: number, depth: number): PtLeaf {
  return pfn < SMALL_PFN_END ? pfn * LEAF_MUL + depth * 8 + prot : BigInt(pfn) * LEAF_MUL_BIG + BigInt(depth * 8 + prot);
}

/** Physical address of the leaf's first byte, in granules (exact below 2^53). */
export function leafPfn(l: PtLeaf): number {
  return typeof l === 'number' ? (l - (l & 63)) / LEAF_MUL : Number(l >> 6n);
}

/** READ | WRITE, plus DIRTY if set. */
export function leafProt(l: PtLeaf): number {
  return typeof l === 'number' ? l & 7 : Number(l & 7n);
}

/** Depth of the slot holding the leaf (0 = root table). */
export function leafDepth(l: PtLeaf): number {
  return typeof l === 'number' ? (l & 63) >>> 3 : Number((l >> 3n) & 7n);
}

/** The same leaf with other bits (READ | WRITE | DIRTY). */
export function leafWithProt(l: PtLeaf, prot: number): PtLeaf {
  return typeof l === 'number' ? l - (l & 7) + prot : (l & ~7n) | BigInt(prot);
}

/** A slot's content is a table page (else a leaf code, or undefined: empty). */
export function isTable(s: PtSlot): s is PtNode {
  return typeof s === 'object';
}

const CHUNK_BITS = 5;
const CHUNK = 1 << CHUNK_BITS;
type Chunk = readonly PtSlot[];
/**
 * A whole chunk of granule leaves with consecutive pfns and the same bits, as the code
 * of its first slot (slot j holds code + j * 64): most of a large map's leaves, written
 * and stored as one number per 32. Only at granule depth (span 1), only number codes.
 */
type RunChunk = number;

/** Slot j of a chunk. */
const runSlot = (c: RunChunk, j: number): PtLeaf => c + j * LEAF_MUL;

export class PtNode {
  constructor(
    /** Up to ENTRIES / 32 chunks of up to 32 slots, both as long as their last present
     *  entry needs: a slot past its chunk's end, or in a chunk past the end or undefined,
     *  is empty. Written in place only through a NodeEdit of an open epoch (hw/own.ts). */
    readonly chunks: readonly (Chunk | RunChunk | undefined)[],
    /** Number of present slots; 0 only for an empty root. */
    public used: number,
    /** The epoch this page was made in (hw/own.ts; 0: none): written in place while
     *  that epoch is open. */
    readonly tag = 0,
    /** Bit c set: chunk c (an array) was made in that epoch for this page alone, so it
     *  may be written in place too. */
    public mask = 0,
  ) {}

  slot(i: number): PtSlot {
    const c = this.chunks[i >>> CHUNK_BITS];
    if (c === undefined) return undefined;
    return typeof c === 'number' ? runSlot(c, i & (CHUNK - 1)) : c[i & (CHUNK - 1)];
  }

  /** All ENTRIES slots as a fresh array (for tests and debugging; not a hot path). */
  get slots(): PtSlot[] {
    const out = new Array<PtSlot>(ENTRIES);
    for (let i = 0; i < ENTRIES; i++) out[i] = this.slot(i);
    return out;
  }
}

// Arrays of n empty slots, to slice: every chunk and chunk index then has the same
// elements kind (packed, any value), which keeps the loads that read them monomorphic.
// (Built from [undefined] and cut to length: an empty literal would have another kind.)
const BLANK: readonly (readonly undefined[])[] = Array.from({ length: CHUNK + 1 }, (_, n) => {
  const a: undefined[] = [undefined];
  while (a.length < n) a.push(undefined);
  a.length = n;
  return a;
});

/** A fresh array of n empty slots. */
const blank = <T>(n: number): (T | undefined)[] => BLANK[n]!.slice();

/** A run chunk's 32 slots as an array (to write one of them). */
function spread(code: RunChunk): PtSlot[] {
  const out = blank<PtSlot>(CHUNK);
  for (let j = 0; j < CHUNK; j++) out[j] = runSlot(code, j);
  return out;
}

/** `a` copied into a fresh array of length max(a.length, n). */
function widened<T>(a: readonly T[], n: number): T[] {
  if (a.length >= n) return a.slice();
  const out = blank<T>(n) as T[];
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}

/**
 * A copy-on-write edit of one table page, owned by one operation: the chunk index is
 * copied once, and each chunk once, at its first write; untouched chunks stay shared.
 * `top` is the last slot the operation may write past what the page holds: copies and
 * new chunks are made long enough for it at once, so they never grow (a grown array
 * is a second allocation). Writes past it still work, growing the array.
 * A page of the open epoch (hw/own.ts) is edited in place instead: its chunk index and
 * the chunks its mask owns are written directly, each write to what existed before
 * this edit recorded first in the epoch's undo log, and node() returns the page itself.
 */
export class NodeEdit {
  private readonly chunks: (Chunk | RunChunk | undefined)[];
  /** Bit c set: chunk c is writable (made by this edit, or owned by the page in place). */
  private owned = 0;
  /** Bit c set: chunk c was made by this edit (writes to it need no undo record). */
  private made = 0;
  /** Some slot was emptied: node() trims trailing empty slots and chunks. */
  private emptied = false;
  /** The page itself when it is written in place, else undefined (a copy). */
  private readonly page: PtNode | undefined;
  /** In place: the undo log for writes to what the page held before (null: a copy). */
  private readonly log: HwUndo | null;
  constructor(
    base: PtNode | undefined,
    private readonly top = -1,
  ) {
    if (base !== undefined && base.tag === writableTag) {
      this.page = base;
      this.chunks = base.chunks as (Chunk | RunChunk | undefined)[];
      this.owned = base.mask;
      this.log = undoSink;
    } else {
      this.page = undefined;
      this.log = null;
      this.chunks = widened<Chunk | RunChunk | undefined>(base ? base.chunks : BLANK[0]!, top < 0 ? 0 : (top >> CHUNK_BITS) + 1);
    }
  }

  /** Length a new copy of chunk c gets, at least `n`. */
  private want(c: number, n: number): number {
    const t = this.top - (c << CHUNK_BITS) + 1;
    return t > n ? (t < CHUNK ? t : CHUNK) : n;
  }

  /** The chunk index, at least n long. */
  private index(n: number): (Chunk | RunChunk | undefined)[] {
    const chunks = this.chunks;
    if (chunks.length < n) {
      if (this.log !== null) this.log.record(chunks, 'length', chunks.length);
      while (chunks.length < n) chunks.push(undefined);
    }
    return chunks;
  }

  /** Writes entry c of the chunk index (which is at least c + 1 long). */
  private put(c: number, x: Chunk | RunChunk | undefined): void {
    if (this.log !== null) this.log.record(this.chunks, c, this.chunks[c]);
    this.chunks[c] = x;
  }

  /** Whether writes into chunk c (owned) must be recorded first: in place, not made here. */
  logs(c: number): boolean {
    return this.log !== null && (this.made & (1 << c)) === 0;
  }

  /** Records slots [a, b) of chunk c (owned, at least b long) before they are written,
   *  if they need it (see logs). */
  note(c: number, ch: readonly PtSlot[], a: number, b: number): void {
    if (!this.logs(c)) return;
    const log = this.log!;
    for (let j = a; j < b; j++) log.record(ch, j, ch[j]);
  }

  /** Chunk c, writable (copied or created at the first call), holding slot j of it. */
  own(c: number, j: number): PtSlot[] {
    const chunks = this.index(c + 1);
    const ch = chunks[c];
    const bit = 1 << c;
    if (this.owned & bit) {
      const mine = ch as PtSlot[];
      if (mine.length <= j) {
        if (this.logs(c)) this.log!.record(mine, 'length', mine.length);
        while (mine.length <= j) mine.push(undefined);
      }
      return mine;
    }
    const mine = ch === undefined ? blank<PtSlot>(this.want(c, j + 1)) : typeof ch === 'number' ? spread(ch) : widened(ch, this.want(c, j + 1));
    this.put(c, mine);
    this.owned |= bit;
    this.made |= bit;
    return mine;
  }

  /** A new, empty, writable chunk c holding slot j of it if chunk c is absent (nothing
   *  to copy or check), else undefined. */
  fresh(c: number, j: number): PtSlot[] | undefined {
    if (this.chunks[c] !== undefined) return undefined;
    this.index(c + 1);
    const mine = blank<PtSlot>(this.want(c, j + 1));
    this.put(c, mine);
    this.owned |= 1 << c;
    this.made |= 1 << c;
    return mine;
  }

  absent(c: number): boolean {
    return this.chunks[c] === undefined;
  }

  /** Puts a run chunk (see RunChunk) in place of absent chunk c. */
  run(c: number, code: RunChunk): void {
    this.index(c + 1);
    this.put(c, code);
    this.owned &= ~(1 << c);
    this.made &= ~(1 << c);
  }

  /** Empties chunk c without copying it. */
  clear(c: number): void {
    this.put(c, undefined);
    this.owned &= ~(1 << c);
    this.made &= ~(1 << c);
    this.emptied = true;
  }

  set(i: number, v: PtSlot): void {
    const c = i >>> CHUNK_BITS;
    const j = i & (CHUNK - 1);
    const ch = this.own(c, j);
    if (this.logs(c)) this.log!.record(ch, j, ch[j]);
    ch[j] = v;
    if (v === undefined) this.emptied = true;
  }

  /** Writes undefined into slots [a, b) of chunk c, which it owns. */
  empty(c: number, a: number, b: number): void {
    const ch = this.own(c, a);
    const e = b < ch.length ? b : ch.length;
    this.note(c, ch, a, e);
    for (let j = a; j < e; j++) ch[j] = undefined;
    this.emptied = true;
  }

  node(used: number): PtNode {
    const chunks = this.chunks;
    if (this.emptied) {
      // Trailing empty slots of the chunks written, then trailing empty chunks, go:
      // later copies of this page copy only what it holds.
      for (let c = 0, m = this.owned; m !== 0; c++, m >>>= 1) {
        if ((m & 1) === 0) continue;
        const ch = chunks[c] as PtSlot[];
        let n = ch.length;
        while (n > 0 && ch[n - 1] === undefined) n--;
        if (n === 0) this.clear(c);
        else if (n < ch.length) {
          if (this.logs(c)) this.log!.record(ch, 'length', ch.length);
          ch.length = n;
        }
      }
      let n = chunks.length;
      while (n > 0 && chunks[n - 1] === undefined) n--;
      if (n < chunks.length) {
        if (this.log !== null) this.log.record(chunks, 'length', chunks.length);
        chunks.length = n;
      }
    }
    const page = this.page;
    if (page === undefined) return new PtNode(chunks, used, epochTag, epochTag === 0 ? 0 : this.owned);
    const log = this.log!;
    if (page.used !== used) {
      log.record(page, 'used', page.used);
      page.used = used;
    }
    if (page.mask !== this.owned) {
      log.record(page, 'mask', page.mask);
      page.mask = this.owned;
    }
    return page;
  }
}

export class PageTable {
  constructor(
    readonly format: PtFormat,
    /** Bitmap over depths at which this table may place leaves (the domain's page sizes). */
    readonly allowedDepths: number,
    /** root, nodes and leaves are written in place only while this table's epoch is
     *  open (see tag), by finish(). */
    public root: PtNode,
    /** Table pages in use, root included. */
    public nodes: number,
    /** Leaf count per depth. */
    readonly leaves: readonly number[],
    /** The epoch this table was made in (hw/own.ts; 0: none); its own leaves array. */
    readonly tag = 0,
  ) {}
}

/** Optional caller-owned scratch counters, to measure work (tests count, never time). */
export interface PtCounters {
  nodesTouched: number;
  leafWrites: number;
}

export interface WalkResult {
  /** Physical address of the walked byte. */
  pa: bigint;
  /** The leaf's bits: READ | WRITE, plus DIRTY if set. */
  prot: number;
  pageSize: bigint;
  /** Native level number (format.levelOf) of the leaf. */
  level: number;
}

export function emptyTable(format: PtFormat, allowedDepths: number): PageTable {
  return new PageTable(format, allowedDepths, new PtNode(BLANK[0]!, 0), 1, new Array(format.levels).fill(0));
}

/** Per-operation context: the only mutable thing, owned by one call. */
class Op {
  readonly spans: readonly number[];
  readonly allowed: number;
  nodes: number;
  readonly leaves: number[];
  unmapped = 0;
  constructor(
    readonly pt: PageTable,
    readonly c: PtCounters | undefined,
  ) {
    this.spans = pt.format.spans;
    this.allowed = pt.allowedDepths;
    this.nodes = pt.nodes;
    this.leaves = pt.leaves.slice();
  }
}

function finish(pt: PageTable, op: Op, root: PtNode): PageTable {
  if (pt.tag === writableTag) {
    // The open epoch's table: written in place, each change recorded.
    const log = undoSink!;
    if (pt.root !== root) {
      log.record(pt, 'root', pt.root);
      pt.root = root;
    }
    if (pt.nodes !== op.nodes) {
      log.record(pt, 'nodes', pt.nodes);
      pt.nodes = op.nodes;
    }
    const leaves = pt.leaves as number[];
    for (let d = 0; d < leaves.length; d++) {
      if (leaves[d] !== op.leaves[d]) {
        log.record(leaves, d, leaves[d]);
        leaves[d] = op.leaves[d]!;
      }
    }
    return pt;
  }
  // An unchanged root means nothing changed, unless it was written in place.
  if (root === pt.root && root.tag !== writableTag) return pt;
  return new PageTable(pt.format, pt.allowedDepths, root, op.nodes, op.leaves, epochTag);
}

function overlap(op: Op, granule: number): Error {
  const f = op.pt.format;
  return new Error(`map over existing mapping at iova 0x${(BigInt(granule) << BigInt(f.granuleShift)).toString(16)}`);
}

/**
 * Runs to map, as granule triples (see mapIn), in a scratch array: the R of the map in
 * progress (one at a time: nothing maps while a map runs), grown for a call with more
 * runs; SPLIT, the at most two pieces of a split leaf. Float64Array: exact for the
 * integers below 2^53 they hold, and nothing is allocated per map. Nothing is kept
 * between calls.
 */
type Runs = Float64Array;
let RUNS: Runs = new Float64Array(3 * 64);
const SPLIT: Runs = new Float64Array(6);

function runsFor(n: number): Runs {
  if (RUNS.length < 3 * n) RUNS = new Float64Array(3 * n * 2);
  return RUNS;
}

/** Writes triple j of R; returns j + 1. */
function putTriple(R: Runs, j: number, first: number, end: number, pfn: number): number {
  R[3 * j] = first;
  R[3 * j + 1] = end;
  R[3 * j + 2] = pfn;
  return j + 1;
}

/**
 * Maps runs into a table page whose window starts at granule `base`. The runs are
 * R[3j] = first granule, R[3j+1] = end granule, R[3j+2] = pfn of the first granule, for
 * j in [j0, j1), ascending and disjoint, each clipped to [lo, hi) here; throws on any
 * overlap with what is mapped. Slots are visited once each, in ascending order, so a
 * page is copied once however many runs cross it: a slot that one run covers whole
 * takes a leaf if the depth allows leaves and the pfn is aligned to the span
 * (iommu_pgsize(): the largest allowed size that iova, pa and length permit; all whole
 * slots of one run share that alignment, so they are filled as one run of leaves);
 * any other touched slot gets a lower table holding every run that crosses it.
 */
function mapIn(op: Op, node: PtNode | undefined, depth: number, base: number, R: Runs, j0: number, j1: number, lo: number, hi: number, prot: number): PtNode {
  const span = op.spans[depth]!;
  const top = Math.floor((hi - 1 - base) / span);
  // Made at the first write: a page of the open epoch whose children were all written
  // in place needs none (hw/own.ts).
  let edit: NodeEdit | undefined;
  let used = node ? node.used : 0;
  if (!node) op.nodes++;
  if (op.c) op.c.nodesTouched++;
  let pos = lo;
  for (let j = j0; j < j1; ) {
    const S = R[3 * j]!;
    const s = S > pos ? S : pos;
    const e = R[3 * j + 1]! < hi ? R[3 * j + 1]! : hi;
    if (s >= e) {
      j++;
      continue;
    }
    const k = Math.floor((s - base) / span);
    const ws = base + k * span;
    if (s === ws && e >= ws + span) {
      // Whole slots [k, kf) of run j.
      const kf = Math.floor((e - base) / span);
      const p = R[3 * j + 2]! + (ws - S);
      if ((op.allowed & (1 << depth)) !== 0 && (p & (span - 1)) === 0) {
        fillLeaves(op, (edit ??= new NodeEdit(node, top)), depth, base, k, kf, p, prot);
        used += kf - k;
      } else {
        for (let x = k; x < kf; x++) {
          const cur = node ? node.slot(x) : undefined;
          const next = mapChild(op, cur, depth, base + x * span, R, j, j + 1, base + x * span, base + (x + 1) * span, prot);
          if (next !== cur) {
            (edit ??= new NodeEdit(node, top)).set(x, next);
            if (cur === undefined) used++;
          }
        }
      }
      pos = base + kf * span;
    } else {
      // Slot k partly: it takes every run that starts before its end; the last of them
      // may go on past it.
      const we = ws + span;
      let jb = j + 1;
      while (jb < j1 && R[3 * jb]! < we) jb++;
      const cur = node ? node.slot(k) : undefined;
      const next = mapChild(op, cur, depth, ws, R, j, jb, s, we < hi ? we : hi, prot);
      if (next !== cur) {
        (edit ??= new NodeEdit(node, top)).set(k, next);
        if (cur === undefined) used++;
      }
      pos = we;
      j = jb - 1;
    }
  }
  // No edit: every write went below, in place (the page is node itself, unchanged).
  return edit ? edit.node(used) : node!;
}

/** The new content of slot `cur` (whose window starts at eStart) with runs [j0, j1)
 *  clipped to [lo, hi) mapped below it: cur itself when it was written in place. */
function mapChild(op: Op, cur: PtSlot, depth: number, eStart: number, R: Runs, j0: number, j1: number, lo: number, hi: number, prot: number): PtNode {
  if (cur !== undefined && typeof cur !== 'object') throw overlap(op, lo);
  return mapIn(op, cur, depth + 1, eStart, R, j0, j1, lo, hi, prot);
}

/** Writes leaves of `depth` into the (empty) slots [a, b), the first one at pfn p. */
function fillLeaves(op: Op, edit: NodeEdit, depth: number, base: number, a: number, b: number, p: number, prot: number): void {
  const span = op.spans[depth]!;
  const n = b - a;
  if (p + (n - 1) * span < SMALL_PFN_END) {
    const step = span * LEAF_MUL;
    let code = p * LEAF_MUL + depth * 8 + prot;
    for (let k = a; k < b; ) {
      const c = k >>> CHUNK_BITS;
      const stop = (c + 1) << CHUNK_BITS;
      const hi = stop < b ? stop : b;
      if (span === 1 && k === stop - CHUNK && hi === stop && edit.absent(c)) {
        edit.run(c, code);
        k = hi;
        code += CHUNK * step;
        continue;
      }
      // A chunk that was absent holds nothing to overlap: written without checks.
      let ch = edit.fresh(c, (hi - 1) & (CHUNK - 1));
      if (ch === undefined) {
        ch = edit.own(c, (hi - 1) & (CHUNK - 1));
        for (let x = k; x < hi; x++) if (ch[x & (CHUNK - 1)] !== undefined) throw overlap(op, base + x * span);
        edit.note(c, ch, k & (CHUNK - 1), ((hi - 1) & (CHUNK - 1)) + 1);
      }
      for (; k < hi; k++, code += step) ch[k & (CHUNK - 1)] = code;
    }
  } else {
    for (let k = a; k < b; k++) {
      if (edit.own(k >>> CHUNK_BITS, k & (CHUNK - 1))[k & (CHUNK - 1)] !== undefined) throw overlap(op, base + k * span);
      edit.set(k, leafCode(p + (k - a) * span, prot, depth));
    }
  }
  op.leaves[depth]! += n;
  if (op.c) op.c.leafWrites += n;
}

/** Unmaps granules [start, end); splits leaves straddling the edges; frees emptied tables. */
function unmapIn(op: Op, node: PtNode, depth: number, base: number, start: number, end: number): PtNode {
  const span = op.spans[depth]!;
  let edit: NodeEdit | undefined;
  let used = node.used;
  let i = Math.floor((start - base) / span);
  let eStart = base + i * span;
  if (eStart !== start) {
    const cur = node.slot(i);
    if (cur !== undefined) {
      const next = unmapSlot(op, cur, depth, eStart, start, end < eStart + span ? end : eStart + span);
      if (next !== cur) {
        edit = new NodeEdit(node);
        if (op.c) op.c.nodesTouched++;
        edit.set(i, next);
        if (next === undefined) used--;
      }
    }
    i++;
    eStart += span;
  }
  const full = Math.floor((end - base) / span);
  // Whole slots [i, full): every present slot becomes empty.
  for (let k = i; k < full; ) {
    const c = k >>> CHUNK_BITS;
    const stop = (c + 1) << CHUNK_BITS;
    const hi = stop < full ? stop : full;
    const ch = node.chunks[c];
    // Slots past the chunk's end are empty: the scan stops there.
    const chEnd = ch === undefined ? 0 : (c << CHUNK_BITS) + (typeof ch === 'number' ? CHUNK : ch.length);
    if (ch === undefined || k >= chEnd) {
      k = hi;
      continue;
    }
    const lo = k;
    const hiIn = hi < chEnd ? hi : chEnd;
    let present = 0;
    let leaves = 0;
    if (typeof ch === 'number') present = leaves = hiIn - lo;
    else {
      for (; k < hiIn; k++) {
        const x = ch[k & (CHUNK - 1)];
        if (x === undefined) continue;
        present++;
        if (typeof x === 'object') op.unmapped += dropTable(op, x, depth + 1);
        else leaves++;
      }
    }
    k = hi;
    if (present === 0) continue;
    if (leaves !== 0) {
      op.unmapped += leaves * span;
      op.leaves[depth]! -= leaves;
      if (op.c) op.c.leafWrites += leaves;
    }
    if (!edit) {
      edit = new NodeEdit(node);
      if (op.c) op.c.nodesTouched++;
    }
    used -= present;
    if (lo === c << CHUNK_BITS && hiIn === chEnd) edit.clear(c);
    else edit.empty(c, lo & (CHUNK - 1), ((hiIn - 1) & (CHUNK - 1)) + 1);
  }
  if (full >= i) {
    eStart += (full - i) * span;
    i = full;
  }
  if (eStart < end) {
    const cur = node.slot(i);
    if (cur !== undefined) {
      const next = unmapSlot(op, cur, depth, eStart, eStart, end);
      if (next !== cur) {
        if (!edit) {
          edit = new NodeEdit(node);
          if (op.c) op.c.nodesTouched++;
        }
        edit.set(i, next);
        if (next === undefined) used--;
      }
    }
  }
  return edit ? edit.node(used) : node;
}

/** New content of a present slot (window from eStart) after unmapping [s, e) inside it. */
function unmapSlot(op: Op, cur: PtNode | PtLeaf, depth: number, eStart: number, s: number, e: number): PtSlot {
  if (typeof cur === 'object') {
    const child = unmapIn(op, cur, depth + 1, eStart, s, e);
    // (A page written in place comes back as itself, perhaps emptied.)
    if (child.used === 0) {
      op.nodes--;
      return undefined;
    }
    return child;
  }
  const span = op.spans[depth]!;
  op.leaves[depth]!--;
  op.unmapped += e - s;
  if (op.c) op.c.leafWrites++;
  // A leaf only partly inside is split: its outside parts are mapped again below it,
  // with the same pa, prot and dirty state, using the largest sizes that fit.
  const pfn = leafPfn(cur);
  const prot = leafProt(cur);
  const R = SPLIT;
  let n = 0;
  if (s > eStart) n = putTriple(R, 0, eStart, s, pfn);
  if (e < eStart + span) n = putTriple(R, n, e, eStart + span, pfn + (e - eStart));
  return n === 0 ? undefined : mapIn(op, undefined, depth + 1, eStart, R, 0, n, R[0]!, R[3 * n - 2]!, prot);
}

/** Forgets a table page wholly inside an unmapped range: counts its table pages and
 *  leaves out of op; returns the granules it mapped. Nothing is copied. */
function dropTable(op: Op, node: PtNode, depth: number): number {
  const span = op.spans[depth]!;
  let granules = 0;
  let leaves = 0;
  op.nodes--;
  if (span === 1) {
    // Granule level: every present slot is a leaf, so `used` is the count.
    op.leaves[depth]! -= node.used;
    if (op.c) op.c.leafWrites += node.used;
    return node.used;
  }
  for (let c = 0; c < node.chunks.length; c++) {
    const ch = node.chunks[c];
    if (ch === undefined) continue;
    if (typeof ch === 'number') {
      leaves += CHUNK;
      continue;
    }
    for (let j = 0; j < ch.length; j++) {
      const x = ch[j];
      if (x === undefined) continue;
      if (typeof x === 'object') granules += dropTable(op, x, depth + 1);
      else leaves++;
    }
  }
  op.leaves[depth]! -= leaves;
  if (op.c) op.c.leafWrites += leaves;
  return granules + leaves * span;
}

const U64_END = 1n << 64n;

/**
 * `x` in granules when it is the usual kind of address or length: a granule multiple
 * below 2^53, so exact as a number; else -1. No Number() call, no bigint arithmetic
 * (smallNumber).
 */
export function usualGranules(f: PtFormat, x: bigint): number {
  const v = smallNumber(x);
  return v >= 0 && (v & (f.granule - 1)) === 0 ? v / f.granule : -1;
}

/**
 * The first granule of [iova, iova+length) when the range is the usual kind (both
 * usualGranules, not empty, inside the table's reach), else -1; its granule count is
 * usualGranules(f, length). a + n is exact: both are below 2^53 / granule.
 */
export function usualRange(f: PtFormat, iova: bigint, length: bigint): number {
  const a = usualGranules(f, iova);
  const n = usualGranules(f, length);
  return a < 0 || n <= 0 || a + n > f.reachNumber / f.granule ? -1 : a;
}

/** Validates a caller's range and converts it to granules; a bad range is a caller bug. */
function checkAligned(f: PtFormat, iova: bigint, length: bigint): void {
  const mask = f.granuleMask;
  if (iova < 0n || length <= 0n || (iova & mask) !== 0n || (length & mask) !== 0n) {
    throw new Error(`range 0x${iova.toString(16)}+0x${length.toString(16)} not ${f.name} granule aligned`);
  }
}

export function toGranules(f: PtFormat, iova: bigint, length: bigint): { start: number; end: number } {
  checkAligned(f, iova, length);
  if (iova + length > f.reach) {
    throw new Error(`range 0x${iova.toString(16)}+0x${length.toString(16)} beyond ${f.iovaBits}-bit ${f.name} IOVA`);
  }
  const g = BigInt(f.granuleShift);
  return { start: Number(iova >> g), end: Number((iova + length) >> g) };
}

/**
 * Writes the granule triple (first, end, pfn) of a run at triple j of R when the run is
 * the usual kind: iova, pa and length granule multiples below 2^53 (exact numbers),
 * inside the table's reach. No Number() call, no bigint arithmetic, nothing allocated.
 */
function putRun(f: PtFormat, R: Runs, j: number, iova: bigint, pa: bigint, length: bigint): boolean {
  const a = usualRange(f, iova, length);
  const p = usualGranules(f, pa);
  if (a < 0 || p < 0) return false;
  putTriple(R, j, a, a + usualGranules(f, length), p);
  return true;
}

const protOk = (prot: number): boolean => prot === 1 || prot === 2 || prot === 3;

/** Maps the runs R[0, n) (ascending, disjoint, at least one) in one operation. */
function mapTriples(pt: PageTable, R: Runs, n: number, prot: number, c: PtCounters | undefined): PageTable {
  const op = new Op(pt, c);
  return finish(pt, op, mapIn(op, pt.root, 0, 0, R, 0, n, R[0]!, R[3 * n - 2]!, prot));
}

export function map(pt: PageTable, iova: bigint, pa: bigint, length: bigint, prot: number, c?: PtCounters): PageTable {
  const f = pt.format;
  const R = runsFor(1);
  // Anything unusual takes the checks below, which also throw.
  if (protOk(prot) && putRun(f, R, 0, iova, pa, length)) return mapTriples(pt, R, 1, prot, c);
  const { start, end } = toGranules(f, iova, length);
  if ((prot & RW) === 0 || (prot & ~RW) !== 0) throw new Error(`bad prot ${prot}`);
  if (pa < 0n || (pa & f.granuleMask) !== 0n || pa + length > U64_END) {
    throw new Error(`pa 0x${pa.toString(16)} not granule aligned or beyond u64`);
  }
  putTriple(R, 0, start, end, Number(pa >> BigInt(f.granuleShift)));
  return mapTriples(pt, R, 1, prot, c);
}

export interface MapRun {
  readonly iova: bigint;
  readonly pa: bigint;
  readonly length: bigint;
}

/**
 * Maps several runs (an area whose pages are physically in pieces) as one operation:
 * the runs go down the table together, so a table page is copied once however many
 * runs cross it. Same result as mapping the runs one by one with `map`.
 */
export function mapRuns(pt: PageTable, runs: readonly MapRun[], prot: number, c?: PtCounters): PageTable {
  const f = pt.format;
  const R = runsFor(runs.length);
  let ok = protOk(prot);
  for (let i = 0; ok && i < runs.length; i++) {
    const r = runs[i]!;
    ok = putRun(f, R, i, r.iova, r.pa, r.length) && (i === 0 || R[3 * i]! >= R[3 * i - 2]!);
  }
  // Anything unusual (unordered or overlapping runs included) maps run by run, where
  // `map` words the error.
  if (!ok || runs.length === 0) return runs.reduce((t, x) => map(t, x.iova, x.pa, x.length, prot, c), pt);
  return mapTriples(pt, R, runs.length, prot, c);
}

/** Unmaps granules [start, end) (0 <= start < end <= the table's reach, exact numbers);
 *  `granules` counts those that were mapped. */
export function unmapGranules(pt: PageTable, start: number, end: number, c?: PtCounters): { pt: PageTable; granules: number } {
  const op = new Op(pt, c);
  const root = unmapIn(op, pt.root, 0, 0, start, end);
  return { pt: finish(pt, op, root), granules: op.unmapped };
}

/** Unmaps [iova, iova+length); the part beyond the table's reach has nothing to unmap. */
export function unmap(pt: PageTable, iova: bigint, length: bigint, c?: PtCounters): { pt: PageTable; unmapped: bigint } {
  const f = pt.format;
  let start = usualRange(f, iova, length);
  let end = start + usualGranules(f, length);
  // The usual range converts with number arithmetic; anything else takes the checks.
  if (start < 0) {
    const top = f.reach;
    checkAligned(f, iova, length);
    if (iova + length > U64_END) throw new Error(`unmap range 0x${iova.toString(16)}+0x${length.toString(16)} beyond u64`);
    if (iova >= top) return { pt, unmapped: 0n };
    ({ start, end } = toGranules(f, iova, iova + length > top ? top - iova : length));
  }
  const r = unmapGranules(pt, start, end, c);
  return { pt: r.pt, unmapped: BigInt(r.granules) << BigInt(f.granuleShift) };
}

/** Leaf translating granule `page`, or undefined. The hot path of DMA misses. */
export function leafAt(pt: PageTable, page: number): PtLeaf | undefined {
  const spans = pt.format.spans;
  let node: PtSlot = pt.root;
  for (let d = 0; typeof node === 'object'; d++) {
    node = node.slot(Math.floor(page / spans[d]!) & (ENTRIES - 1));
  }
  return node;
}

export function walk(pt: PageTable, iova: bigint): WalkResult | null {
  const f = pt.format;
  if (iova < 0n || iova >= 1n << BigInt(f.iovaBits)) return null;
  const g = BigInt(f.granuleShift);
  const leaf = leafAt(pt, Number(iova >> g));
  if (leaf === undefined) return null;
  const depth = leafDepth(leaf);
  const size = spanBytes(f, depth);
  return { pa: (BigInt(leafPfn(leaf)) << g) + (iova & (size - 1n)), prot: leafProt(leaf), pageSize: size, level: f.levelOf(depth) };
}

export interface PtStats {
  /** Table pages in use, root included. */
  nodes: number;
  /** Leaf count per page size, ascending sizes. */
  leaves: { pageSize: bigint; count: number }[];
}

export function stats(pt: PageTable): PtStats {
  const f = pt.format;
  const leaves: { pageSize: bigint; count: number }[] = [];
  for (let d = f.levels - 1; d >= 0; d--) {
    if (f.leafDepths & (1 << d)) leaves.push({ pageSize: spanBytes(f, d), count: pt.leaves[d]! });
  }
  return { nodes: pt.nodes, leaves };
}

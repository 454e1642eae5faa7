// Read-side traversals of a PageTable (ascending-IOVA runs for comparison with the
// software model) and the leaf-rewriting ones used by dirty tracking. Traversals only
// descend into table pages that intersect the asked range, so cost follows the nodes
// in range, not the bytes. Invariant: rewrites copy a table page only if a leaf below
// it actually changes, so a no-op rewrite returns the very same PageTable.

import { DIRTY, ENTRIES, PtFormat, RW } from './format.js';
import { NodeEdit, PageTable, PtLeaf, PtNode, leafPfn, leafProt, leafWithProt } from './pagetable.js';

/** A maximal run where IOVA and PA are both contiguous and prot (READ|WRITE) is equal. */
export interface PtRun {
  iova: bigint;
  pa: bigint;
  length: bigint;
  /** READ|WRITE only: the DIRTY bit is state, not part of the mapping. */
  prot: number;
}

type LeafVisitor = (leaf: PtLeaf, leafStart: number, s: number, e: number) => void;

function visit(f: PtFormat, node: PtNode, depth: number, base: number, start: number, end: number, cb: LeafVisitor): void {
  const span = f.spans[depth]!;
  let i = Math.floor((start - base) / span);
  for (let eStart = base + i * span; eStart < end && i < ENTRIES; i++, eStart += span) {
    const cur = node.slot(i);
    if (cur === undefined) continue;
    const s = Math.max(start, eStart);
    const e = Math.min(end, eStart + span);
    if (typeof cur === 'object') visit(f, cur, depth + 1, eStart, s, e, cb);
    else cb(cur, eStart, s, e);
  }
}

/** Clamps a byte range [first, last] to granules [start, end) inside the table's reach. */
function granuleWindow(f: PtFormat, first: bigint, last: bigint): { start: number; end: number } | null {
  const top = (1n << BigInt(f.iovaBits)) - 1n;
  if (first < 0n) first = 0n;
  if (last > top) last = top;
  if (first > last) return null;
  const g = BigInt(f.granuleShift);
  return { start: Number(first >> g), end: Number(last >> g) + 1 };
}

/** Visits leaves intersecting bytes [first, last], ascending; s/e are clipped granules. */
export function forEachLeaf(pt: PageTable, first: bigint, last: bigint, cb: LeafVisitor): void {
  const w = granuleWindow(pt.format, first, last);
  if (w) visit(pt.format, pt.root, 0, 0, w.start, w.end, cb);
}

/** Coalesced runs of all translations intersecting [first, last] (inclusive), clipped to it. */
export function runs(pt: PageTable, first = 0n, last = (1n << 64n) - 1n): PtRun[] {
  const f = pt.format;
  const g = BigInt(f.granuleShift);
  const out: PtRun[] = [];
  let runStart = -1;
  let runEnd = -1;
  let runPa = -1;
  let runProt = 0;
  const flush = (): void => {
    if (runStart < 0) return;
    out.push({ iova: BigInt(runStart) << g, pa: BigInt(runPa) << g, length: BigInt(runEnd - runStart) << g, prot: runProt });
  };
  forEachLeaf(pt, first, last, (leaf, leafStart, s, e) => {
    const pa = leafPfn(leaf) + (s - leafStart);
    const prot = leafProt(leaf) & RW;
    if (s === runEnd && pa === runPa + (runEnd - runStart) && prot === runProt) {
      runEnd = e;
      return;
    }
    flush();
    runStart = s;
    runEnd = e;
    runPa = pa;
    runProt = prot;
  });
  flush();
  // Byte-exact clipping: the granule window may be wider than [first, last].
  const head = out[0];
  if (head && head.iova < first) {
    const cut = first - head.iova;
    out[0] = { ...head, iova: first, pa: head.pa + cut, length: head.length - cut };
  }
  const tail = out[out.length - 1];
  if (tail && tail.iova + tail.length - 1n > last) out[out.length - 1] = { ...tail, length: last - tail.iova + 1n };
  return out;
}

/** Rewrites leaves intersecting granules [start, end); fn returns the leaf itself to keep it. */
function rewrite(f: PtFormat, node: PtNode, depth: number, base: number, start: number, end: number, fn: (l: PtLeaf) => PtLeaf): PtNode {
  const span = f.spans[depth]!;
  let slots: NodeEdit | undefined;
  let i = Math.floor((start - base) / span);
  for (let eStart = base + i * span; eStart < end && i < ENTRIES; i++, eStart += span) {
    const cur = node.slot(i);
    if (cur === undefined) continue;
    const next = typeof cur !== 'object' ? fn(cur) : rewrite(f, cur, depth + 1, eStart, Math.max(start, eStart), Math.min(end, eStart + span), fn);
    if (next === cur) continue;
    if (!slots) slots = new NodeEdit(node);
    slots.set(i, next);
  }
  return slots ? slots.node(node.used) : node;
}

function rewriteRange(pt: PageTable, start: number, end: number, fn: (l: PtLeaf) => PtLeaf): PageTable {
  const root = rewrite(pt.format, pt.root, 0, 0, start, end, fn);
  return root === pt.root ? pt : new PageTable(pt.format, pt.allowedDepths, root, pt.nodes, pt.leaves);
}

const clearDirty = (l: PtLeaf): PtLeaf => {
  const prot = leafProt(l);
  return prot & DIRTY ? leafWithProt(l, prot & ~DIRTY) : l;
};
const setDirty = (l: PtLeaf): PtLeaf => {
  const prot = leafProt(l);
  return prot & DIRTY ? l : leafWithProt(l, prot | DIRTY);
};

/** Sets DIRTY on the leaf translating granule `page`; same table if absent or already dirty. */
export function markDirty(pt: PageTable, page: number): PageTable {
  return rewriteRange(pt, page, page + 1, setDirty);
}

export function clearAllDirty(pt: PageTable): PageTable {
  return rewriteRange(pt, 0, 2 ** (pt.format.iovaBits - pt.format.granuleShift), clearDirty);
}

export interface DirtyRange {
  iova: bigint;
  length: bigint;
}

/** Which pageSize chunks of [iova, iova+length) are dirty, as ascending coalesced ranges
 *  (each a whole number of chunks); with clear, the DIRTY bit of every leaf reported is
 *  cleared. A dirty leaf larger than pageSize marks every chunk it covers in the range. */
export function readDirty(pt: PageTable, iova: bigint, length: bigint, pageSize: bigint, clear: boolean): { pt: PageTable; dirty: DirtyRange[] } {
  if (pageSize <= 0n || (pageSize & (pageSize - 1n)) !== 0n) throw new Error(`page size ${pageSize} not a power of two`);
  if (iova < 0n || length < 0n || iova % pageSize !== 0n || length % pageSize !== 0n) {
    throw new Error(`dirty range 0x${iova.toString(16)}+0x${length.toString(16)} not ${pageSize}-aligned`);
  }
  const dirty: DirtyRange[] = [];
  if (length === 0n) return { pt, dirty };
  const f = pt.format;
  const g = BigInt(f.granuleShift);
  const end = iova + length;
  let lastPage = -1n;
  forEachLeaf(pt, iova, end - 1n, (leaf, _leafStart, s, e) => {
    if ((leafProt(leaf) & DIRTY) === 0) return;
    let cs = ((BigInt(s) << g) / pageSize) * pageSize;
    let ce = (((BigInt(e) << g) + pageSize - 1n) / pageSize) * pageSize;
    if (cs < iova) cs = iova;
    if (ce > end) ce = end;
    const prev = dirty[dirty.length - 1];
    if (prev && cs <= lastPage) {
      if (ce > lastPage) {
        prev.length = ce - prev.iova;
        lastPage = ce;
      }
      return;
    }
    dirty.push({ iova: cs, length: ce - cs });
    lastPage = ce;
  });
  if (!clear || dirty.length === 0) return { pt, dirty };
  const w = granuleWindow(f, iova, end - 1n);
  return { pt: w ? rewriteRange(pt, w.start, w.end, clearDirty) : pt, dirty };
}

/** Expands dirty ranges to the iova of each pageSize chunk (test/UI helper). */
export function dirtyChunks(ranges: readonly DirtyRange[], pageSize: bigint): bigint[] {
  const out: bigint[] = [];
  for (const r of ranges) for (let a = r.iova; a < r.iova + r.length; a += pageSize) out.push(a);
  return out;
}

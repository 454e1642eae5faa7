// Persistent radix page table shared by all formats: 512-entry table pages whose slots
// hold nothing, a leaf (page / block / superpage), or a lower table page. map / unmap
// copy each table page they touch exactly once per operation (path copying), so cost
// follows the number of table entries written, never the number of bytes mapped. A
// table page keeps its slots in 16 chunks of 32 (absent while empty): a copy shares
// the chunks it does not write, so a small map copies 16 + 32 pointers per level, not 512.
// Invariants: nodes reachable from a published PageTable are never written; a leaf's
// pfn is aligned to its own size; a non-root table page is never empty (unmap frees it);
// `nodes` and `leaves` always equal what a full traversal would count.

import { ENTRIES, PtFormat, RW, spanBytes } from './format.js';

export class PtLeaf {
  constructor(
    /** Physical address of the leaf's first byte, in granules (exact below 2^53). */
    readonly pfn: number,
    /** READ | WRITE, plus DIRTY once a tracked DMA write went through it. */
    readonly prot: number,
    /** Depth of the slot holding it (0 = root table). */
    readonly depth: number,
  ) {}
}

export type PtSlot = PtNode | PtLeaf | undefined;

const CHUNK_BITS = 5;
const CHUNK = 1 << CHUNK_BITS;
type Chunk = readonly PtSlot[];

export class PtNode {
  constructor(
    /** ENTRIES / 32 chunks of 32 slots; undefined: a chunk never written (all empty). */
    readonly chunks: readonly (Chunk | undefined)[],
    /** Number of present slots; 0 only for an empty root. */
    readonly used: number,
  ) {}

  slot(i: number): PtSlot {
    const c = this.chunks[i >>> CHUNK_BITS];
    return c === undefined ? undefined : c[i & (CHUNK - 1)];
  }

  /** All ENTRIES slots as a fresh array (for tests and debugging; not a hot path). */
  get slots(): PtSlot[] {
    const out = new Array<PtSlot>(ENTRIES);
    for (let i = 0; i < ENTRIES; i++) out[i] = this.slot(i);
    return out;
  }
}

const EMPTY_CHUNKS: readonly (Chunk | undefined)[] = Object.freeze(new Array<Chunk | undefined>(ENTRIES / CHUNK).fill(undefined));

/**
 * A copy-on-write edit of one table page, owned by one operation: the chunk index is
 * copied once, and each chunk once, at its first write; untouched chunks stay shared.
 */
export class NodeEdit {
  private readonly chunks: (Chunk | undefined)[];
  private owned = 0;
  constructor(base: PtNode | undefined) {
    this.chunks = (base ? base.chunks : EMPTY_CHUNKS).slice();
  }

  set(i: number, v: PtSlot): void {
    const c = i >>> CHUNK_BITS;
    let ch = this.chunks[c] as PtSlot[] | undefined;
    if (!(this.owned & (1 << c))) {
      ch = ch ? ch.slice() : new Array<PtSlot>(CHUNK).fill(undefined);
      this.chunks[c] = ch;
      this.owned |= 1 << c;
    }
    ch![i & (CHUNK - 1)] = v;
  }

  node(used: number): PtNode {
    return new PtNode(this.chunks, used);
  }
}

export class PageTable {
  constructor(
    readonly format: PtFormat,
    /** Bitmap over depths at which this table may place leaves (the domain's page sizes). */
    readonly allowedDepths: number,
    readonly root: PtNode,
    /** Table pages in use, root included. */
    readonly nodes: number,
    /** Leaf count per depth. */
    readonly leaves: readonly number[],
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
  return new PageTable(format, allowedDepths, new PtNode(EMPTY_CHUNKS, 0), 1, new Array(format.levels).fill(0));
}

/** Per-operation context: the only mutable thing, owned by one call. */
interface Op {
  readonly f: PtFormat;
  readonly allowed: number;
  nodes: number;
  readonly leaves: number[];
  unmapped: number;
  readonly c: PtCounters | undefined;
}

function newOp(pt: PageTable, c: PtCounters | undefined): Op {
  return { f: pt.format, allowed: pt.allowedDepths, nodes: pt.nodes, leaves: pt.leaves.slice(), unmapped: 0, c };
}

function finish(pt: PageTable, op: Op, root: PtNode): PageTable {
  return root === pt.root ? pt : new PageTable(pt.format, pt.allowedDepths, root, op.nodes, op.leaves);
}

function hex(granules: number, f: PtFormat): string {
  return '0x' + (BigInt(granules) << BigInt(f.granuleShift)).toString(16);
}

/** Maps granules [start, end) of the node's window to pfn.. ; throws on any overlap. */
function mapIn(op: Op, node: PtNode | undefined, depth: number, base: number, start: number, end: number, pfn: number, prot: number): PtNode {
  const span = op.f.spans[depth]!;
  const slots = new NodeEdit(node);
  let used = node ? node.used : 0;
  if (!node) op.nodes++;
  if (op.c) op.c.nodesTouched++;
  const leafOk = (op.allowed & (1 << depth)) !== 0;
  let i = Math.floor((start - base) / span);
  for (let eStart = base + i * span; eStart < end; i++, eStart += span) {
    const s = Math.max(start, eStart);
    const e = Math.min(end, eStart + span);
    const p = pfn + (s - start);
    const cur = node ? node.slot(i) : undefined;
    // iommu_pgsize(): the largest allowed size that iova, pa and the remaining length permit.
    if (leafOk && s === eStart && e === eStart + span && p % span === 0) {
      if (cur !== undefined) throw new Error(`map over existing mapping at iova ${hex(s, op.f)}`);
      slots.set(i, new PtLeaf(p, prot, depth));
      used++;
      op.leaves[depth]!++;
      if (op.c) op.c.leafWrites++;
    } else {
      if (cur instanceof PtLeaf) throw new Error(`map over existing mapping at iova ${hex(s, op.f)}`);
      if (cur === undefined) used++;
      slots.set(i, mapIn(op, cur, depth + 1, eStart, s, e, p, prot));
    }
  }
  return slots.node(used);
}

/** Unmaps granules [start, end); splits leaves straddling the edges; frees emptied tables. */
function unmapIn(op: Op, node: PtNode, depth: number, base: number, start: number, end: number): PtNode {
  const span = op.f.spans[depth]!;
  let slots: NodeEdit | undefined;
  let used = node.used;
  let i = Math.floor((start - base) / span);
  for (let eStart = base + i * span; eStart < end; i++, eStart += span) {
    const cur = node.slot(i);
    if (cur === undefined) continue;
    const s = Math.max(start, eStart);
    const e = Math.min(end, eStart + span);
    let next: PtSlot;
    if (cur instanceof PtLeaf) {
      op.leaves[depth]!--;
      op.unmapped += e - s;
      if (op.c) op.c.leafWrites++;
      // A leaf only partly inside is split: its outside parts are mapped again below it,
      // with the same pa, prot and dirty state, using the largest sizes that fit.
      let child: PtNode | undefined;
      if (s > eStart) child = mapIn(op, child, depth + 1, eStart, eStart, s, cur.pfn, cur.prot);
      if (e < eStart + span) child = mapIn(op, child, depth + 1, eStart, e, eStart + span, cur.pfn + (e - eStart), cur.prot);
      next = child;
    } else {
      const child = unmapIn(op, cur, depth + 1, eStart, s, e);
      if (child === cur) continue;
      if (child.used === 0) op.nodes--;
      next = child.used === 0 ? undefined : child;
    }
    if (!slots) {
      slots = new NodeEdit(node);
      if (op.c) op.c.nodesTouched++;
    }
    slots.set(i, next);
    if (next === undefined) used--;
  }
  return slots ? slots.node(used) : node;
}

const U64_END = 1n << 64n;

/** Validates a caller's range and converts it to granules; a bad range is a caller bug. */
function checkAligned(f: PtFormat, iova: bigint, length: bigint): void {
  const mask = (1n << BigInt(f.granuleShift)) - 1n;
  if (iova < 0n || length <= 0n || (iova & mask) !== 0n || (length & mask) !== 0n) {
    throw new Error(`range 0x${iova.toString(16)}+0x${length.toString(16)} not ${f.name} granule aligned`);
  }
}

export function toGranules(f: PtFormat, iova: bigint, length: bigint): { start: number; end: number } {
  checkAligned(f, iova, length);
  if (iova + length > 1n << BigInt(f.iovaBits)) {
    throw new Error(`range 0x${iova.toString(16)}+0x${length.toString(16)} beyond ${f.iovaBits}-bit ${f.name} IOVA`);
  }
  const g = BigInt(f.granuleShift);
  return { start: Number(iova >> g), end: Number((iova + length) >> g) };
}

export function map(pt: PageTable, iova: bigint, pa: bigint, length: bigint, prot: number, c?: PtCounters): PageTable {
  const f = pt.format;
  const { start, end } = toGranules(f, iova, length);
  if ((prot & RW) === 0 || (prot & ~RW) !== 0) throw new Error(`bad prot ${prot}`);
  if (pa < 0n || (pa & ((1n << BigInt(f.granuleShift)) - 1n)) !== 0n || pa + length > U64_END) {
    throw new Error(`pa 0x${pa.toString(16)} not granule aligned or beyond u64`);
  }
  const op = newOp(pt, c);
  const root = mapIn(op, pt.root, 0, 0, start, end, Number(pa >> BigInt(f.granuleShift)), prot);
  return finish(pt, op, root);
}

/** Unmaps [iova, iova+length); the part beyond the table's reach has nothing to unmap. */
export function unmap(pt: PageTable, iova: bigint, length: bigint, c?: PtCounters): { pt: PageTable; unmapped: bigint } {
  const f = pt.format;
  const top = 1n << BigInt(f.iovaBits);
  checkAligned(f, iova, length);
  if (iova + length > U64_END) throw new Error(`unmap range 0x${iova.toString(16)}+0x${length.toString(16)} beyond u64`);
  if (iova >= top) return { pt, unmapped: 0n };
  const { start, end } = toGranules(f, iova, iova + length > top ? top - iova : length);
  const op = newOp(pt, c);
  const root = unmapIn(op, pt.root, 0, 0, start, end);
  return { pt: finish(pt, op, root), unmapped: BigInt(op.unmapped) << BigInt(f.granuleShift) };
}

/** Leaf translating granule `page`, or undefined. The hot path of DMA misses. */
export function leafAt(pt: PageTable, page: number): PtLeaf | undefined {
  const spans = pt.format.spans;
  let node: PtSlot = pt.root;
  for (let d = 0; node instanceof PtNode; d++) {
    node = node.slot(Math.floor(page / spans[d]!) % ENTRIES);
  }
  return node;
}

export function walk(pt: PageTable, iova: bigint): WalkResult | null {
  const f = pt.format;
  if (iova < 0n || iova >= 1n << BigInt(f.iovaBits)) return null;
  const g = BigInt(f.granuleShift);
  const leaf = leafAt(pt, Number(iova >> g));
  if (!leaf) return null;
  const size = spanBytes(f, leaf.depth);
  return { pa: (BigInt(leaf.pfn) << g) + (iova & (size - 1n)), prot: leaf.prot, pageSize: size, level: f.levelOf(leaf.depth) };
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

// Per-unit IOTLB: a bounded, persistent cache of leaf translations tagged by domain,
// keyed by (domain, leaf-size-aligned IOVA page, leaf depth). Filled only by translation
// misses, emptied only by explicit invalidation or by eviction when full; it never
// looks at page tables, so an unmap without invalidation leaves stale entries that a
// later DMA will hit (intentionally: that is what property tests must catch).
// Eviction is FIFO by insertion order (oldest fill goes first), deterministic by a
// per-IOTLB sequence number. Invariant: `entries`, `fifo` and `index` hold exactly the
// same set of entries; size = entries.size <= capacity; all seq numbers of live entries
// >= head. `index` orders each (domain, depth)'s entries by IOVA (a persistent chunked
// sorted list per pair, hw/sorted.ts): a range invalidation costs O(log n + hits), with
// one range deletion per (domain, depth) and one new Iotlb however many entries go.

import { PMap } from './pmap.js';
import { SortedMap } from './sorted.js';

type Tree = SortedMap<TlbEntry>;

export const DEFAULT_IOTLB_CAPACITY = 1024;

export class TlbEntry {
  constructor(
    readonly domain: number,
    /** Depth of the cached leaf in its page table. */
    readonly depth: number,
    /** First IOVA granule the entry translates (aligned to span). */
    readonly iovaBase: number,
    /** Leaf size in granules. */
    readonly span: number,
    /** Physical granule of iovaBase. */
    readonly pfn: number,
    /** READ|WRITE as cached at fill time (DIRTY stripped). */
    readonly prot: number,
    /** Fill order, for FIFO eviction. */
    readonly seq: number,
  ) {}
}

/** Composite key: leaf-size page number and depth, < 2^41 for any 48-bit IOVA. */
const keyOf = (iovaBase: number, span: number, depth: number): number => (iovaBase / span) * 8 + depth;

export class Iotlb {
  constructor(
    readonly capacity: number,
    readonly entries: PMap<TlbEntry>,
    readonly fifo: PMap<TlbEntry>,
    readonly head: number,
    readonly nextSeq: number,
    /** Depths that may have entries (superset); trims lookup probes. */
    readonly depthMask: number,
    /** (domain, depth) -> that pair's entries ordered by iovaBase. */
    readonly index: PMap<Tree>,
  ) {}

  get size(): number {
    return this.entries.size;
  }
}

export function emptyIotlb(capacity = DEFAULT_IOTLB_CAPACITY): Iotlb {
  if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`bad IOTLB capacity ${capacity}`);
  return new Iotlb(capacity, PMap.empty(), PMap.empty(), 0, 0, 0, PMap.empty());
}

/** Entry translating granule `page` of `domain`, probing each leaf depth. Allocation-free. */
export function tlbLookup(tlb: Iotlb, domain: number, page: number, spans: readonly number[]): TlbEntry | undefined {
  let mask = tlb.depthMask;
  for (let d = spans.length - 1; mask !== 0 && d >= 0; d--) {
    const bit = 1 << d;
    if ((mask & bit) === 0) continue;
    mask &= ~bit;
    const span = spans[d]!;
    const base = page - (page % span);
    const e = tlb.entries.get(domain, keyOf(base, span, d));
    if (e !== undefined) return e;
  }
  return undefined;
}

function unindex(index: PMap<Tree>, e: TlbEntry): PMap<Tree> {
  const tree = index.get(e.domain, e.depth)!.delete(e.iovaBase);
  return tree.size === 0 ? index.delete(e.domain, e.depth) : index.set2(e.domain, e.depth, tree);
}

function remove(tlb: Iotlb, e: TlbEntry): Iotlb {
  return new Iotlb(
    tlb.capacity,
    tlb.entries.delete(e.domain, keyOf(e.iovaBase, e.span, e.depth)),
    tlb.fifo.delete(e.seq),
    tlb.head,
    tlb.nextSeq,
    tlb.depthMask,
    unindex(tlb.index, e),
  );
}

/** Caches a leaf translation after a miss, evicting the oldest fill when full. */
export function tlbFill(tlb: Iotlb, domain: number, depth: number, iovaBase: number, span: number, pfn: number, prot: number): { tlb: Iotlb; entry: TlbEntry } {
  let t = tlb;
  if (t.size >= t.capacity) {
    let head = t.head;
    let victim: TlbEntry | undefined;
    while ((victim = t.fifo.get(head)) === undefined) head++;
    t = remove(t, victim);
    t = new Iotlb(t.capacity, t.entries, t.fifo, head + 1, t.nextSeq, t.depthMask, t.index);
  }
  const entry = new TlbEntry(domain, depth, iovaBase, span, pfn, prot, t.nextSeq);
  const next = new Iotlb(
    t.capacity,
    t.entries.set2(domain, keyOf(iovaBase, span, depth), entry),
    t.fifo.set(entry.seq, entry),
    t.head,
    t.nextSeq + 1,
    t.depthMask | (1 << depth),
    t.index.set2(domain, depth, (t.index.get(domain, depth) ?? SortedMap.empty<TlbEntry>()).set(iovaBase, entry)),
  );
  return { tlb: next, entry };
}

/** Invalidation scope, in granules. No domain: everything. No range: the whole domain. */
export interface TlbScope {
  domain?: number;
  start?: number;
  end?: number;
}

export function tlbInvalidate(tlb: Iotlb, scope: TlbScope, spans?: readonly number[]): Iotlb {
  if (scope.domain === undefined) {
    return tlb.size === 0 ? tlb : new Iotlb(tlb.capacity, PMap.empty(), PMap.empty(), tlb.nextSeq, tlb.nextSeq, 0, PMap.empty());
  }
  if (tlb.size === 0) return tlb;
  const domain = scope.domain;
  const start = scope.start ?? 0;
  const end = scope.end ?? Infinity;
  let index = tlb.index;
  let hits: TlbEntry[] | undefined;
  for (let d = 0, mask = tlb.depthMask; mask !== 0; d++, mask >>>= 1) {
    if ((mask & 1) === 0) continue;
    const tree = index.get(domain, d);
    if (tree === undefined) continue;
    // Entries of depth d overlap [start, end) iff iovaBase is in [start - span + 1, end).
    const span = spans ? spans[d]! : tree.entries().next().value![1].span;
    hits ??= [];
    const next = tree.deleteRange(start - span + 1, end, hits);
    if (next !== tree) index = next.size === 0 ? index.delete(domain, d) : index.set2(domain, d, next);
  }
  if (hits === undefined || hits.length === 0) return tlb;
  // One pass per map, one new Iotlb for the whole invalidation.
  let entries = tlb.entries;
  let fifo = tlb.fifo;
  for (const e of hits) {
    entries = entries.delete(e.domain, keyOf(e.iovaBase, e.span, e.depth));
    fifo = fifo.delete(e.seq);
  }
  return new Iotlb(tlb.capacity, entries, fifo, tlb.head, tlb.nextSeq, tlb.depthMask, index);
}

/** All entries in a stable order: domain, then IOVA, then depth. */
export function tlbEntries(tlb: Iotlb): TlbEntry[] {
  return [...tlb.entries.values()].sort((a, b) => a.domain - b.domain || a.iovaBase - b.iovaBase || a.depth - b.depth);
}

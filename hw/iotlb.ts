// Per-unit IOTLB: a bounded, persistent cache of leaf translations tagged by domain,
// keyed by (domain, leaf-size-aligned IOVA page, leaf depth). Filled only by translation
// misses, emptied only by explicit invalidation or by eviction when full; it never
// looks at page tables, so an unmap without invalidation leaves stale entries that a
// later DMA will hit (intentionally: that is what property tests must catch).
// Eviction is FIFO by fill order (oldest live fill goes first), deterministic.
// Invariants: `entries` and `index` hold exactly the same set of live entries; size =
// entries.size <= capacity. `queue` holds every live entry exactly once, in fill (seq)
// order, plus dead ones (invalidated after their fill): invalidation does not touch the
// queue, eviction skips dead entries at the front (an entry is live iff `entries` maps
// its key to that very object), and a fill compacts the queue once it exceeds twice the
// capacity, so it stays O(capacity). `index` orders each (domain, depth)'s entries by
// IOVA (a persistent chunked sorted list per pair, hw/sorted.ts): a range invalidation
// costs O(log n + hits), with one range deletion per (domain, depth) and one new Iotlb
// however many entries go. No array reachable from a published Iotlb is written again.

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
    /** Fill order (for debugging: the queue keeps the order itself). */
    readonly seq: number,
  ) {}
}

/** Composite key: leaf-size page number and depth, < 2^41 for any 48-bit IOVA. */
const keyOf = (iovaBase: number, span: number, depth: number): number => (iovaBase / span) * 8 + depth;

const QCHUNK = 32;

/** Persistent fill-order queue: chunks of <= QCHUNK entries; the first `first` entries
 *  of chunks[0] are already consumed. `length` counts the unconsumed ones. */
export class FillQueue {
  constructor(
    readonly chunks: readonly (readonly TlbEntry[])[],
    readonly first: number,
    readonly length: number,
  ) {}

  static readonly EMPTY = new FillQueue([], 0, 0);
}

function qPush(q: FillQueue, e: TlbEntry): FillQueue {
  const n = q.chunks.length;
  const chunks = q.chunks.slice();
  const last = n > 0 ? q.chunks[n - 1]! : undefined;
  if (last !== undefined && last.length < QCHUNK) {
    const c = last.slice();
    c.push(e);
    chunks[n - 1] = c;
  } else chunks.push([e]);
  return new FillQueue(chunks, q.first, q.length + 1);
}

const isLive = (entries: PMap<TlbEntry>, e: TlbEntry): boolean => entries.get(e.domain, keyOf(e.iovaBase, e.span, e.depth)) === e;

/** The live entries of q, in order, in full chunks. */
function qCompact(q: FillQueue, entries: PMap<TlbEntry>): FillQueue {
  const chunks: TlbEntry[][] = [];
  let cur: TlbEntry[] = [];
  let n = 0;
  for (let ci = 0; ci < q.chunks.length; ci++) {
    const c = q.chunks[ci]!;
    for (let i = ci === 0 ? q.first : 0; i < c.length; i++) {
      if (!isLive(entries, c[i]!)) continue;
      cur.push(c[i]!);
      n++;
      if (cur.length === QCHUNK) {
        chunks.push(cur);
        cur = [];
      }
    }
  }
  if (cur.length > 0) chunks.push(cur);
  return new FillQueue(chunks, 0, n);
}

export class Iotlb {
  constructor(
    readonly capacity: number,
    readonly entries: PMap<TlbEntry>,
    readonly queue: FillQueue,
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
  return new Iotlb(capacity, PMap.empty(), FillQueue.EMPTY, 0, 0, PMap.empty());
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

/** Caches a leaf translation after a miss, evicting the oldest live fill when full. */
export function tlbFill(tlb: Iotlb, domain: number, depth: number, iovaBase: number, span: number, pfn: number, prot: number): { tlb: Iotlb; entry: TlbEntry } {
  let entries = tlb.entries;
  let index = tlb.index;
  let queue = tlb.queue;
  if (entries.size >= tlb.capacity) {
    // Pop from the front up to and including the first live entry (there is one: the
    // queue holds every live entry), then drop it from entries and index.
    let ci = 0;
    let i = queue.first;
    let popped = 0;
    let victim: TlbEntry;
    for (;;) {
      const c = queue.chunks[ci]!;
      const e = c[i]!;
      popped++;
      if (++i === c.length) {
        ci++;
        i = 0;
      }
      if (isLive(entries, e)) {
        victim = e;
        break;
      }
    }
    queue = new FillQueue(ci === 0 ? queue.chunks : queue.chunks.slice(ci), i, queue.length - popped);
    entries = entries.delete(victim.domain, keyOf(victim.iovaBase, victim.span, victim.depth));
    index = unindex(index, victim);
  }
  const entry = new TlbEntry(domain, depth, iovaBase, span, pfn, prot, tlb.nextSeq);
  entries = entries.set2(domain, keyOf(iovaBase, span, depth), entry);
  index = index.set2(domain, depth, (index.get(domain, depth) ?? SortedMap.empty<TlbEntry>()).set(iovaBase, entry));
  queue = qPush(queue, entry);
  if (queue.length > 2 * tlb.capacity + QCHUNK) queue = qCompact(queue, entries);
  return { tlb: new Iotlb(tlb.capacity, entries, queue, tlb.nextSeq + 1, tlb.depthMask | (1 << depth), index), entry };
}

/** Invalidation scope, in granules. No domain: everything. No range: the whole domain. */
export interface TlbScope {
  domain?: number;
  start?: number;
  end?: number;
}

export function tlbInvalidate(tlb: Iotlb, scope: TlbScope, spans?: readonly number[]): Iotlb {
  if (scope.domain === undefined) {
    return tlb.size === 0 ? tlb : new Iotlb(tlb.capacity, PMap.empty(), FillQueue.EMPTY, tlb.nextSeq, 0, PMap.empty());
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
  // One new Iotlb for the whole invalidation; the queue keeps the hits as dead entries.
  let entries = tlb.entries;
  for (const e of hits) entries = entries.delete(e.domain, keyOf(e.iovaBase, e.span, e.depth));
  return new Iotlb(tlb.capacity, entries, tlb.queue, tlb.nextSeq, tlb.depthMask, index);
}

/** All entries in a stable order: domain, then IOVA, then depth. */
export function tlbEntries(tlb: Iotlb): TlbEntry[] {
  return [...tlb.entries.values()].sort((a, b) => a.domain - b.domain || a.iovaBase - b.iovaBase || a.depth - b.depth);
}

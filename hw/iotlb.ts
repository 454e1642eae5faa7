// Per-unit IOTLB: a bounded, persistent cache of leaf translations tagged by domain,
// keyed by (domain, leaf-size-aligned IOVA page, leaf depth). Filled only by translation
// misses, emptied only by explicit invalidation or by eviction when full; it never
// looks at page tables, so an unmap without invalidation leaves stale entries that a
// later DMA will hit (intentionally: that is what property tests must catch).
// Eviction is FIFO by fill order (oldest live fill goes first), deterministic.
// Entries live in one place: per domain, per leaf depth, a persistent chunked map
// keyed by iovaBase (hw/sorted.ts). It serves exact lookups (a binary search, no hashing)
// and range invalidation alike (O(log n + hits), one new Iotlb however many entries go;
// a whole-domain invalidation drops the domain's lists at once).
// Invariants: size = number of entries in the lists <= capacity; a domain with no entry
// has no DomainTlb, a depth with none has no list. `queue` holds every live entry exactly
// once, in fill (seq) order, plus dead ones (invalidated after their fill): invalidation
// does not touch the queue, eviction skips dead entries at the front (an entry is live
// iff its list holds that very object), and a fill compacts the queue once it exceeds
// twice the capacity, so it stays O(capacity). Nothing reachable from a published Iotlb
// is written again.

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
    /** Fill order: the queue keeps it, and its compaction sorts by it. */
    readonly seq: number,
  ) {}
}

/** One domain's entries: per leaf depth, ordered by iovaBase (undefined: none). */
export class DomainTlb {
  constructor(
    readonly trees: readonly (Tree | undefined)[],
    readonly size: number,
  ) {}
}

const QCHUNK = 32;

/** Newest-first list of the fills not yet gathered into a chunk. */
class Back {
  constructor(
    readonly entry: TlbEntry,
    readonly older: Back | null,
  ) {}
}

/** Persistent fill-order queue: full chunks of QCHUNK entries, oldest first (the first
 *  `first` entries of chunks[0] are already consumed), then up to QCHUNK - 1 newer fills
 *  in `back`, newest first. A push allocates one Back cell, and every QCHUNK-th push
 *  gathers them into a chunk. `length` counts the unconsumed entries. */
export class FillQueue {
  constructor(
    readonly chunks: readonly (readonly TlbEntry[])[],
    readonly first: number,
    readonly back: Back | null,
    readonly backLength: number,
    readonly length: number,
  ) {}

  static readonly EMPTY = new FillQueue([], 0, null, 0, 0);
}

/** The entries of `back`, oldest first, as one array. */
function gather(back: Back | null, n: number): TlbEntry[] {
  const out = new Array<TlbEntry>(n);
  for (let b = back, i = n - 1; b; b = b.older, i--) out[i] = b.entry;
  return out;
}

function qPush(q: FillQueue, e: TlbEntry): FillQueue {
  if (q.backLength + 1 < QCHUNK) return new FillQueue(q.chunks, q.first, new Back(e, q.back), q.backLength + 1, q.length + 1);
  const chunk = gather(new Back(e, q.back), QCHUNK);
  const chunks = q.chunks.slice();
  chunks.push(chunk);
  return new FillQueue(chunks, q.first, null, 0, q.length + 1);
}

/** The same queue with `back` gathered into a chunk (so that it can be consumed). */
function qFlatten(q: FillQueue): FillQueue {
  if (q.backLength === 0) return q;
  const chunks = q.chunks.slice();
  chunks.push(gather(q.back, q.backLength));
  return new FillQueue(chunks, q.first, null, 0, q.length);
}

function treeOf(domains: PMap<DomainTlb>, domain: number, depth: number): Tree | undefined {
  const dt = domains.get(domain);
  return dt === undefined ? undefined : dt.trees[depth];
}

const isLive = (domains: PMap<DomainTlb>, e: TlbEntry): boolean => treeOf(domains, e.domain, e.depth)?.get(e.iovaBase) === e;

/** The queue of the live entries alone: every entry of every list, in fill (seq) order,
 *  in full chunks. Gathered from the lists and sorted by seq (unique, so the order is
 *  total), which costs less than a liveness lookup per queued entry. */
function qCompact(domains: PMap<DomainTlb>): FillQueue {
  const live: TlbEntry[] = [];
  for (const dt of domains.values()) for (const t of dt.trees) if (t !== undefined) t.pushValues(live);
  live.sort(bySeq);
  const chunks: TlbEntry[][] = [];
  for (let i = 0; i < live.length; i += QCHUNK) chunks.push(live.slice(i, i + QCHUNK));
  return new FillQueue(chunks, 0, null, 0, live.length);
}

const bySeq = (a: TlbEntry, b: TlbEntry): number => a.seq - b.seq;

export class Iotlb {
  constructor(
    readonly capacity: number,
    /** Live entries. */
    readonly size: number,
    /** Domain -> its entries per depth (absent: the domain has none). */
    readonly domains: PMap<DomainTlb>,
    readonly queue: FillQueue,
    readonly nextSeq: number,
  ) {}
}

export function emptyIotlb(capacity = DEFAULT_IOTLB_CAPACITY): Iotlb {
  if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`bad IOTLB capacity ${capacity}`);
  return new Iotlb(capacity, 0, PMap.empty(), FillQueue.EMPTY, 0);
}

/** Entry translating granule `page` of `domain`, probing each leaf depth, smallest leaf
 *  first. Allocation-free. */
export function tlbLookup(tlb: Iotlb, domain: number, page: number, spans: readonly number[]): TlbEntry | undefined {
  if (tlb.size === 0) return undefined;
  const dt = tlb.domains.get(domain);
  if (dt === undefined) return undefined;
  const trees = dt.trees;
  for (let d = trees.length - 1; d >= 0; d--) {
    const tree = trees[d];
    if (tree === undefined) continue;
    const span = spans[d]!;
    const e = tree.get(page - (page & (span - 1)));
    if (e !== undefined) return e;
  }
  return undefined;
}

/** `domains` with the domain's tree of `depth` replaced (size changed by `delta`). */
function withTree(domains: PMap<DomainTlb>, domain: number, depth: number, tree: Tree, delta: number): PMap<DomainTlb> {
  const dt = domains.get(domain);
  const size = (dt === undefined ? 0 : dt.size) + delta;
  if (size === 0) return domains.delete(domain);
  const old = dt === undefined ? [] : dt.trees;
  const trees = new Array<Tree | undefined>(old.length > depth ? old.length : depth + 1);
  for (let d = 0; d < trees.length; d++) trees[d] = old[d];
  trees[depth] = tree.size === 0 ? undefined : tree;
  return domains.set(domain, new DomainTlb(trees, size));
}

/** Caches a leaf translation after a miss, evicting the oldest live fill when full. */
export function tlbFill(tlb: Iotlb, domain: number, depth: number, iovaBase: number, span: number, pfn: number, prot: number): { tlb: Iotlb; entry: TlbEntry } {
  let domains = tlb.domains;
  let queue = tlb.queue;
  let size = tlb.size;
  if (size >= tlb.capacity) {
    // Pop from the front up to and including the first live entry (there is one: the
    // queue holds every live entry), then drop it from its list.
    let ci = 0;
    let i = queue.first;
    let popped = 0;
    let victim: TlbEntry;
    for (;;) {
      if (ci === queue.chunks.length) {
        // Every full chunk was consumed: gather the back, keep scanning it.
        queue = qFlatten(queue);
      }
      const c = queue.chunks[ci]!;
      const e = c[i]!;
      popped++;
      if (++i === c.length) {
        ci++;
        i = 0;
      }
      if (isLive(domains, e)) {
        victim = e;
        break;
      }
    }
    queue = new FillQueue(ci === 0 ? queue.chunks : queue.chunks.slice(ci), i, queue.back, queue.backLength, queue.length - popped);
    domains = withTree(domains, victim.domain, victim.depth, treeOf(domains, victim.domain, victim.depth)!.delete(victim.iovaBase), -1);
    size--;
  }
  const entry = new TlbEntry(domain, depth, iovaBase, span, pfn, prot, tlb.nextSeq);
  const tree = treeOf(domains, domain, depth) ?? SortedMap.empty<TlbEntry>();
  const next = tree.set(iovaBase, entry);
  const grew = next.size - tree.size;
  domains = withTree(domains, domain, depth, next, grew);
  queue = qPush(queue, entry);
  if (queue.length > 2 * tlb.capacity + QCHUNK) queue = qCompact(domains);
  return { tlb: new Iotlb(tlb.capacity, size + grew, domains, queue, tlb.nextSeq + 1), entry };
}

/** Invalidation scope, in granules. No domain: everything. No range: the whole domain. */
export interface TlbScope {
  domain?: number;
  start?: number;
  end?: number;
}

/** Drops what the scope covers: the queue keeps the dropped entries as dead ones. One
 *  new Iotlb however many go; a range costs a binary search per depth plus the hits. */
export function tlbInvalidate(tlb: Iotlb, scope: TlbScope, spans: readonly number[]): Iotlb {
  if (tlb.size === 0) return tlb;
  if (scope.domain === undefined) return new Iotlb(tlb.capacity, 0, PMap.empty(), FillQueue.EMPTY, tlb.nextSeq);
  const domain = scope.domain;
  if (scope.start !== undefined || scope.end !== undefined) return tlbInvalidateRange(tlb, domain, scope.start ?? 0, scope.end ?? Infinity, spans);
  const dt = tlb.domains.get(domain);
  if (dt === undefined) return tlb;
  return new Iotlb(tlb.capacity, tlb.size - dt.size, tlb.domains.delete(domain), tlb.queue, tlb.nextSeq);
}

/** Drops the domain's entries that overlap granules [start, end) (tlbInvalidate's range
 *  case, without a scope object). */
export function tlbInvalidateRange(tlb: Iotlb, domain: number, start: number, end: number, spans: readonly number[]): Iotlb {
  if (tlb.size === 0) return tlb;
  const dt = tlb.domains.get(domain);
  if (dt === undefined) return tlb;
  let trees: (Tree | undefined)[] | undefined;
  let gone = 0;
  for (let d = 0; d < dt.trees.length; d++) {
    const tree = dt.trees[d];
    if (tree === undefined) continue;
    // Entries of depth d overlap [start, end) iff iovaBase is in [start - span + 1, end).
    const next = tree.deleteRange(start - spans[d]! + 1, end);
    if (next === tree) continue;
    trees ??= dt.trees.slice();
    trees[d] = next.size === 0 ? undefined : next;
    gone += tree.size - next.size;
  }
  if (trees === undefined) return tlb;
  const domains = gone === dt.size ? tlb.domains.delete(domain) : tlb.domains.set(domain, new DomainTlb(trees, dt.size - gone));
  return new Iotlb(tlb.capacity, tlb.size - gone, domains, tlb.queue, tlb.nextSeq);
}

/** All entries in a stable order: domain, then IOVA, then depth. */
export function tlbEntries(tlb: Iotlb): TlbEntry[] {
  const out: TlbEntry[] = [];
  for (const dt of tlb.domains.values()) for (const t of dt.trees) if (t) for (const [, e] of t.entries()) out.push(e);
  return out.sort((a, b) => a.domain - b.domain || a.iovaBase - b.iovaBase || a.depth - b.depth);
}

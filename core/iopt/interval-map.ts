/*
 * IntervalMap<V>: non-overlapping closed intervals [start, last] -> V, keyed
 * by start. It holds an IOAS's areas and its allowed list.
 *
 * Invariant: no two intervals share a point (invariant 11 for areas). insert
 * throws on overlap because the kernel checks first (EEXIST/EINVAL) and only
 * then inserts, so an overlap here is a model bug, never a user error.
 *
 * Persistent: every update returns a new map sharing all but O(log n) nodes;
 * the receiver is never changed. The class has one readonly field and no
 * prototype magic, so immer (which does not draft class instances) stores it
 * as an opaque value.
 */

import * as avl from './avl.js';
import { assertRange, U64_MAX } from './u64.js';

export interface IovaRange {
  readonly start: bigint;
  readonly last: bigint;
}

export interface IntervalEntry<V> extends IovaRange {
  readonly value: V;
}

/** What the allocator needs from any interval set: point coverage queries. */
export interface Coverage {
  /** Smallest x >= p not covered; 2^64 if everything from p up is covered. */
  firstUncovered(p: bigint): bigint;
  /** Smallest x >= p that is covered, or undefined. */
  nextCovered(p: bigint): bigint | undefined;
}

export class IntervalMap<V> implements Coverage {
  private static readonly EMPTY = new IntervalMap<never>(null);

  private constructor(private readonly root: avl.Tree<IntervalEntry<V>>) {}

  static empty<V>(): IntervalMap<V> {
    return IntervalMap.EMPTY as IntervalMap<V>;
  }

  /** Builds a map from entries in any order; throws on overlap. */
  static of<V>(entries: Iterable<{ start: bigint; last: bigint; value: V }>): IntervalMap<V> {
    let m = IntervalMap.empty<V>();
    for (const e of entries) m = m.insert(e.start, e.last, e.value);
    return m;
  }

  get size(): number {
    return this.root === null ? 0 : this.root.n;
  }

  insert(start: bigint, last: bigint, value: V): IntervalMap<V> {
    assertRange(start, last, 'IntervalMap.insert');
    const item: IntervalEntry<V> = { start, last, value };
    const root = avl.insertDisjoint(this.root, avl.leaf(start, last + 1n, 0, item));
    if (root === null) {
      const hit = avl.walk.hit!.item as IntervalEntry<V>;
      throw new Error(`IntervalMap.insert: [${start}, ${last}] overlaps existing [${hit.start}, ${hit.last}]`);
    }
    return new IntervalMap(root);
  }

  /** Removes the interval starting exactly at `start`; throws if there is none. */
  remove(start: bigint): IntervalMap<V> {
    const root = avl.remove(this.root, start, 0);
    if (root === this.root) throw new Error(`IntervalMap.remove: no interval starts at ${start}`);
    return new IntervalMap(root);
  }

  /** Replaces the value of the interval starting at `start` (same bounds). */
  update(start: bigint, value: V): IntervalMap<V> {
    const n = avl.get(this.root, start, 0);
    if (n === null) throw new Error(`IntervalMap.update: no interval starts at ${start}`);
    const item: IntervalEntry<V> = { start, last: n.item.last, value };
    return new IntervalMap(avl.replaceItem(this.root, start, 0, item));
  }

  /** The interval starting exactly at `start`. */
  get(start: bigint): IntervalEntry<V> | undefined {
    return avl.get(this.root, start, 0)?.item;
  }

  /** The interval containing `iova`. */
  find(iova: bigint): IntervalEntry<V> | undefined {
    const n = avl.floor(this.root, iova);
    return n !== null && n.e > iova ? n.item : undefined;
  }

  /**
   * The lowest interval intersecting [start, last]. Intervals are disjoint, so
   * that is the one containing `start`, else the first one starting after it:
   * one search path (floorNext), no sibling read.
   */
  firstIntersecting(start: bigint, last: bigint): IntervalEntry<V> | undefined {
    const f = avl.floorNext(this.root, start);
    if (f !== null && f.e > start) return f.item;
    const n = avl.walk.next as avl.Node<IntervalEntry<V>> | null;
    return n !== null && n.s <= last ? n.item : undefined;
  }

  anyIntersects(start: bigint, last: bigint): boolean {
    return this.firstIntersecting(start, last) !== undefined;
  }

  /**
   * Intervals intersecting [start, last], ascending (an array: no generator on
   * hot paths). Only the one containing `start` begins before it; when that or
   * the next one is all there is (UNMAP of one area), one search path finds it.
   */
  intersecting(start: bigint, last: bigint): IntervalEntry<V>[] {
    const f = avl.floorNext(this.root, start);
    const n = avl.walk.next as avl.Node<IntervalEntry<V>> | null;
    const out: IntervalEntry<V>[] = f !== null && f.e > start ? [f.item] : [];
    if (n === null || n.s > last) return out;
    const rest = avl.itemsFrom(this.root, n.s, last);
    return out.length === 0 ? rest : out.concat(rest);
  }


  /** All intervals, ascending. */
  *entries(): Generator<IntervalEntry<V>, void, undefined> {
    yield* avl.itemsFrom(this.root, 0n, U64_MAX);
  }

  [Symbol.iterator](): Iterator<IntervalEntry<V>> {
    return this.entries();
  }

  /** Lowest interval, if any. */
  first(): IntervalEntry<V> | undefined {
    return avl.firstIntersecting(this.root, 0n, U64_MAX)?.item;
  }

  firstUncovered(p: bigint): bigint {
    return avl.firstUncovered(this.root, p);
  }

  nextCovered(p: bigint): bigint | undefined {
    return avl.nextCovered(this.root, p);
  }

  /** Test hook: validates the tree's internal invariants; returns the size. */
  selfCheck(): number {
    const n = avl.checkTree(this.root);
    let prevLast = -1n;
    for (const e of this.entries()) {
      if (e.start <= prevLast) throw new Error('IntervalMap: overlap or disorder');
      prevLast = e.last;
    }
    return n;
  }
}

/*
 * ReservedMap: an IOAS's reserved IOVA ranges (the kernel's reserved_itree).
 * Each range has an owner key such as `dev:0000:01:00.0` or `domain:3`.
 * Ranges of any owners may overlap, and one owner may repeat a range: the
 * kernel never checks reserved against reserved (iopt_reserve_iova only looks
 * at areas and allowed, which the caller does before add()).
 *
 * Storage: one persistent interval tree ordered by (start, insertion seq), so
 * ties behave like the kernel's rbtree (later inserts sort after) and the
 * "first hit" is the lowest start, then the oldest; plus a per-owner index
 * (sorted-btree, persistent via with/without) mapping each owner to an
 * immutable cons list of its tree keys, so removeOwner costs
 * O(k log n) for k ranges and never scans other owners.
 *
 * Invariant: the owner index and the tree describe exactly the same ranges.
 */

import sortedBtree from 'sorted-btree';
import * as avl from './avl.js';
import type { Coverage, IovaRange } from './interval-map.js';
import { assertRange, U64_LIMIT, U64_MAX } from './u64.js';

const BTree = sortedBtree.default;
type OwnerIndex = sortedBtree.default<string, KeyCell>;

export interface ReservedRange extends IovaRange {
  readonly owner: string;
}

/** One owned tree key; lists are prepended, never edited. */
interface KeyCell {
  readonly s: bigint;
  readonly k: number;
  readonly next: KeyCell | null;
}

const EMPTY_INDEX: OwnerIndex = (() => {
  const t = new BTree<string, KeyCell>();
  t.freeze();
  return t;
})();

export class ReservedMap implements Coverage {
  private static readonly EMPTY = new ReservedMap(null, EMPTY_INDEX, 0);

  private constructor(
    private readonly root: avl.Tree<ReservedRange>,
    private readonly owners: OwnerIndex,
    /** Next tie-break number; only ever grows, so keys are never reused. */
    private readonly seq: number,
  ) {}

  static empty(): ReservedMap {
    return ReservedMap.EMPTY;
  }

  get size(): number {
    return this.root === null ? 0 : this.root.n;
  }

  get ownerCount(): number {
    return this.owners.size;
  }

  add(owner: string, start: bigint, last: bigint): ReservedMap {
    assertRange(start, last, 'ReservedMap.add');
    const item: ReservedRange = { start, last, owner };
    const k = this.seq;
    const root = avl.insert(this.root, avl.leaf(start, last + 1n, k, item));
    const cell: KeyCell = { s: start, k, next: this.owners.get(owner) ?? null };
    const owners = this.owners.with(owner, cell, true);
    owners.freeze();
    return new ReservedMap(root, owners, k + 1);
  }

  /** Drops every range of `owner`; returns this map when it owns none. */
  removeOwner(owner: string): ReservedMap {
    const cell = this.owners.get(owner);
    if (cell === undefined) return this;
    let root = this.root;
    for (let c: KeyCell | null = cell; c !== null; c = c.next) root = avl.remove(root, c.s, c.k);
    const owners = this.owners.without(owner);
    owners.freeze();
    return new ReservedMap(root, owners, this.seq);
  }

  hasOwner(owner: string): boolean {
    return this.owners.has(owner);
  }

  /** The owner's ranges in the order they were added. */
  rangesOf(owner: string): ReservedRange[] {
    const out: ReservedRange[] = [];
    for (let c = this.owners.get(owner) ?? null; c !== null; c = c.next) {
      const n = avl.get(this.root, c.s, c.k);
      if (n === null) throw new Error('ReservedMap: owner index out of sync');
      out.push(n.item);
    }
    return out.reverse();
  }

  /** First range (lowest start, then oldest) of any owner touching [start, last]. */
  intersects(start: bigint, last: bigint): ReservedRange | undefined {
    return avl.firstIntersecting(this.root, start, last)?.item;
  }

  /** Every range touching [start, last], in (start, age) order. */
  allIntersecting(start: bigint, last: bigint): ReservedRange[] {
    const out: ReservedRange[] = [];
    avl.forEachIntersecting(this.root, start, last, (n) => {
      out.push(n.item);
    });
    return out;
  }

  /** All ranges in (start, age) order. */
  *entries(): Generator<ReservedRange, void, undefined> {
    yield* avl.itemsFrom(this.root, 0n, U64_MAX);
  }

  /**
   * The complement of the union of all ranges over [0, 2^64-1], ascending: what
   * IOMMU_IOAS_IOVA_RANGES reports. Costs O(holes * log n).
   */
  holes(): IovaRange[] {
    const out: IovaRange[] = [];
    let p = 0n;
    while (p <= U64_MAX) {
      const start = avl.firstUncovered(this.root, p);
      if (start === U64_LIMIT) break;
      const next = avl.nextCovered(this.root, start);
      if (next === undefined) {
        out.push({ start, last: U64_MAX });
        break;
      }
      out.push({ start, last: next - 1n });
      p = next;
    }
    return out;
  }

  firstUncovered(p: bigint): bigint {
    return avl.firstUncovered(this.root, p);
  }

  nextCovered(p: bigint): bigint | undefined {
    return avl.nextCovered(this.root, p);
  }

  /** Test hook: tree invariants plus index/tree agreement; returns the size. */
  selfCheck(): number {
    const n = avl.checkTree(this.root);
    let indexed = 0;
    this.owners.forEachPair((owner, head) => {
      for (let c: KeyCell | null = head; c !== null; c = c.next) {
        const node = avl.get(this.root, c.s, c.k);
        if (node === null || node.item.owner !== owner) throw new Error('ReservedMap: index mismatch');
        indexed++;
      }
    });
    if (indexed !== n) throw new Error('ReservedMap: index count mismatch');
    return n;
  }
}

/*
 * Persistent (path-copying) AVL tree of closed intervals, the shared engine of
 * IntervalMap and ReservedMap. Nodes are immutable once built: every update
 * copies only the O(log n) nodes on its path, so any older root stays a valid,
 * unchanged version.
 *
 * Order is by (s, k): start, then a tie-break number (0 when starts are unique,
 * an insertion sequence when intervals may share a start). Intervals are kept
 * as [s, e) with e = last + 1 (e may be 2^64) so the augmentation below needs
 * comparisons only, no bigint allocation while rebuilding paths.
 *
 * Each node caches over its subtree: size, minimum start, maximum end, and
 * `solid` = "the union of the subtree's intervals is one gap-free block
 * [minS, maxE)". maxE gives kernel-style interval queries (leftmost
 * intersecting node, like interval_tree_iter_first); `solid` lets
 * firstUncovered jump over runs of touching intervals in O(log n), which a
 * plain sorted map cannot do (first-fit allocation packs areas back to back).
 * Disjoint maps (IntervalMap) need less: a point's neighbours are the last
 * right and left turns of its search path, so floorNext and insertDisjoint
 * read only the path's nodes, never a sibling (reaching cold nodes, not
 * comparing, is what these trees cost in a replay).
 */

import { U64_MAX } from './u64.js';

export interface Node<T> {
  readonly s: bigint;
  readonly e: bigint;
  readonly k: number;
  readonly item: T;
  readonly l: Node<T> | null;
  readonly r: Node<T> | null;
  readonly h: number;
  readonly n: number;
  readonly minS: bigint;
  readonly maxE: bigint;
  readonly solid: boolean;
}

export type Tree<T> = Node<T> | null;

/** Rebuilds `t`'s payload over new children, recomputing the augmentation. */
function mk<T>(t: Node<T>, l: Tree<T>, r: Tree<T>): Node<T> {
  const s = t.s;
  const e = t.e;
  let h = 0;
  let n = 1;
  let minS = s;
  let maxE = e;
  let solid = true;
  if (l !== null) {
    h = l.h;
    n += l.n;
    minS = l.minS;
    solid = l.solid && l.maxE >= s;
    if (l.maxE > maxE) maxE = l.maxE;
  }
  if (r !== null) {
    if (r.h > h) h = r.h;
    n += r.n;
    // maxE so far is the end of the block left of r: r must touch it.
    solid = solid && r.solid && r.minS <= maxE;
    if (r.maxE > maxE) maxE = r.maxE;
  }
  return { s, e, k: t.k, item: t.item, l, r, h: h + 1, n, minS, maxE, solid };
}

export function leaf<T>(s: bigint, e: bigint, k: number, item: T): Node<T> {
  return { s, e, k, item, l: null, r: null, h: 1, n: 1, minS: s, maxE: e, solid: true };
}

const ht = <T>(t: Tree<T>): number => (t === null ? 0 : t.h);

/** mk() plus the AVL rotations; children heights differ by at most 2. */
function bal<T>(t: Node<T>, l: Tree<T>, r: Tree<T>): Node<T> {
  const hl = ht(l);
  const hr = ht(r);
  if (hl > hr + 1 && l !== null) {
    if (ht(l.l) >= ht(l.r)) return mk(l, l.l, mk(t, l.r, r));
    const lr = l.r as Node<T>;
    return mk(lr, mk(l, l.l, lr.l), mk(t, lr.r, r));
  }
  if (hr > hl + 1 && r !== null) {
    if (ht(r.r) >= ht(r.l)) return mk(r, mk(t, l, r.l), r.r);
    const rl = r.l as Node<T>;
    return mk(rl, mk(t, l, rl.l), mk(r, rl.r, r.r));
  }
  return mk(t, l, r);
}

function cmp(s: bigint, k: number, t: Node<unknown>): number {
  return s < t.s ? -1 : s > t.s ? 1 : k - t.k;
}

/** Inserts a leaf; throws if its (s, k) key is present (a caller bug). */
export function insert<T>(t: Tree<T>, x: Node<T>): Node<T> {
  if (t === null) return x;
  const c = cmp(x.s, x.k, t);
  if (c < 0) return bal(t, insert(t.l, x), t.r);
  if (c > 0) return bal(t, t.l, insert(t.r, x));
  throw new Error('avl: duplicate key');
}

function removeMin<T>(t: Node<T>): [Node<T>, Tree<T>] {
  if (t.l === null) return [t, t.r];
  const [m, l] = removeMin(t.l);
  return [m, bal(t, l, t.r)];
}

/** Returns `t` itself (same reference) when the key is absent. */
export function remove<T>(t: Tree<T>, s: bigint, k: number): Tree<T> {
  if (t === null) return null;
  const c = cmp(s, k, t);
  if (c < 0) {
    const l = remove(t.l, s, k);
    return l === t.l ? t : bal(t, l, t.r);
  }
  if (c > 0) {
    const r = remove(t.r, s, k);
    return r === t.r ? t : bal(t, t.l, r);
  }
  if (t.l === null) return t.r;
  if (t.r === null) return t.l;
  const [m, r] = removeMin(t.r);
  return bal(m, t.l, r);
}

/** Swaps the payload of an existing key; shape and augmentation are unchanged. */
export function replaceItem<T>(t: Tree<T>, s: bigint, k: number, item: T): Tree<T> {
  if (t === null) return null;
  const c = cmp(s, k, t);
  if (c < 0) {
    const l = replaceItem(t.l, s, k, item);
    return l === t.l ? t : { ...t, l };
  }
  if (c > 0) {
    const r = replaceItem(t.r, s, k, item);
    return r === t.r ? t : { ...t, r };
  }
  return { ...t, item };
}

export function get<T>(t: Tree<T>, s: bigint, k: number): Node<T> | null {
  while (t !== null) {
    const c = cmp(s, k, t);
    if (c === 0) return t;
    t = c < 0 ? t.l : t.r;
  }
  return null;
}

/** Second result of floorNext (a holder, so that no pair is allocated per call). */
export const walk: { next: Node<unknown> | null; hit: Node<unknown> | null } = { next: null, hit: null };

/**
 * floor(t, p), and in walk.next the first node whose start is > p: both lie on
 * the one search path (the last right and left turns), so this reads only the
 * nodes on it, never a sibling.
 */
export function floorNext<T>(t: Tree<T>, p: bigint): Node<T> | null {
  let best: Node<T> | null = null;
  let next: Node<T> | null = null;
  while (t !== null) {
    if (t.s <= p) {
      best = t;
      t = t.r;
    } else {
      next = t;
      t = t.l;
    }
  }
  walk.next = next;
  return best;
}

let pred: Node<unknown> | null = null;
let succ: Node<unknown> | null = null;

/**
 * insert() for trees of pairwise disjoint intervals (ties unused), which
 * refuses an overlap in the same descent: the new interval's neighbours in
 * key order are the last left and right turns of its search path. Returns
 * null on overlap, with the lowest overlapping node in walk.hit; no node has
 * been built then.
 */
export function insertDisjoint<T>(t: Tree<T>, x: Node<T>): Node<T> | null {
  pred = null;
  succ = null;
  return insD(t, x);
}

function insD<T>(t: Tree<T>, x: Node<T>): Node<T> | null {
  if (t === null) {
    if (pred !== null && pred.e > x.s) walk.hit = pred;
    else if (succ !== null && succ.s < x.e) walk.hit = succ;
    else return x;
    return null;
  }
  if (x.s < t.s) {
    succ = t;
    const l = insD(t.l, x);
    return l === null ? null : bal(t, l, t.r);
  }
  if (x.s > t.s) {
    pred = t;
    const r = insD(t.r, x);
    return r === null ? null : bal(t, t.l, r);
  }
  walk.hit = t;
  return null;
}

/** The last node (in key order) whose start is <= p. */
export function floor<T>(t: Tree<T>, p: bigint): Node<T> | null {
  let best: Node<T> | null = null;
  while (t !== null) {
    if (t.s <= p) {
      best = t;
      t = t.r;
    } else t = t.l;
  }
  return best;
}

/**
 * Lowest-key node intersecting [a, b]. Going left whenever the left subtree
 * reaches past `a` is safe: if nothing there intersects, everything reaching
 * past `a` starts after `b`, and so does everything to the right.
 */
export function firstIntersecting<T>(t: Tree<T>, a: bigint, b: bigint): Node<T> | null {
  while (t !== null) {
    if (t.l !== null && t.l.maxE > a) {
      t = t.l;
      continue;
    }
    if (t.s > b) return null;
    if (t.e > a) return t;
    t = t.r !== null && t.r.maxE > a ? t.r : null;
  }
  return null;
}

/** Visits nodes intersecting [a, b] in key order until `f` returns true. */
export function forEachIntersecting<T>(
  t: Tree<T>,
  a: bigint,
  b: bigint,
  f: (n: Node<T>) => boolean | void,
): boolean {
  if (t === null || t.maxE <= a || t.minS > b) return false;
  if (forEachIntersecting(t.l, a, b, f)) return true;
  if (t.s > b) return true;
  if (t.e > a && f(t) === true) return true;
  return forEachIntersecting(t.r, a, b, f);
}

/**
 * Smallest x >= p not covered by any interval (2^64 when covered to the top).
 * Sweeps in start order keeping `reach` = end of the covered run; subtrees that
 * end before reach are skipped, solid subtrees that touch it are taken whole.
 */
export function firstUncovered<T>(t: Tree<T>, p: bigint): bigint {
  return sweep(t, p);
}

function sweep<T>(t: Tree<T>, reach: bigint): bigint {
  if (t === null || t.maxE <= reach || t.minS > reach) return reach;
  if (t.solid) return t.maxE;
  reach = sweep(t.l, reach);
  if (t.s > reach) return reach;
  if (t.e > reach) reach = t.e;
  return sweep(t.r, reach);
}

/** Smallest x >= p that is covered, or undefined. */
export function nextCovered<T>(t: Tree<T>, p: bigint): bigint | undefined {
  const n = firstIntersecting(t, p, U64_MAX);
  if (n === null) return undefined;
  return n.s > p ? n.s : p;
}

/** Items of nodes with s in [p, last], ascending, collected with an explicit stack. */
export function itemsFrom<T>(t: Tree<T>, p: bigint, last: bigint): T[] {
  const out: T[] = [];
  const stack: Node<T>[] = [];
  while (t !== null) {
    if (t.s >= p) {
      stack.push(t);
      t = t.l;
    } else t = t.r;
  }
  for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
    if (x.s > last) break;
    out.push(x.item);
    for (let c = x.r; c !== null; c = c.l) stack.push(c);
  }
  return out;
}

/** Structural self-check for tests: order, balance, and every cached field. */
export function checkTree<T>(t: Tree<T>): number {
  if (t === null) return 0;
  const ref = mk(t, t.l, t.r);
  if (ref.h !== t.h || ref.n !== t.n || ref.minS !== t.minS || ref.maxE !== t.maxE || ref.solid !== t.solid) {
    throw new Error('avl: stale augmentation');
  }
  if (Math.abs(ht(t.l) - ht(t.r)) > 1) throw new Error('avl: unbalanced');
  if (t.l !== null && cmp(t.l.s, t.l.k, t) >= 0) throw new Error('avl: order');
  if (t.r !== null && cmp(t.r.s, t.r.k, t) <= 0) throw new Error('avl: order');
  checkTree(t.l);
  checkTree(t.r);
  return t.n;
}

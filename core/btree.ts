/*
 * btree.ts: the persistent B+tree behind Memory (frames, VMAs, page extents, pin index)
 * and the pages tables: a sorted map with O(1) clone() and copy-on-write nodes, with
 * the subset of sorted-btree's API those callers use (and its semantics).
 *
 * Invariants. Every key lives in a leaf, all leaves at one depth; an internal node's
 * keys[i] is exactly the smallest key below its child i (so a search for k goes to the
 * last child whose smallest key is <= k, and getPairOrNextLower never backtracks).
 * Nodes other than the root hold between MIN and MAX entries. A node may be written in
 * place only by the tree whose `owner` token it carries: clone() hands both trees new
 * tokens, so every node they share becomes read-only to both, and either copies a
 * node at its first write to it. Owned nodes are always reached through owned
 * parents (a copy is made only along a path from the root), so a write copies exactly
 * the shared part of its path, once per clone. A copy shares the keys array with its
 * original until it changes a key (most writes replace a value or a child and keep
 * every key), so `keys` is written only through wkeys().
 *
 * Keys are compared by the comparator given at construction, except for the two cases
 * the simulator uses on its hot paths, which compare with `<` directly (no call per
 * comparison): no comparator (number keys, natural order) and cmpBig (bigint keys).
 */

import { arrayInserted, arrayRemoved, sortedBound } from '../hw/index.js';

export type Comparator<K> = (a: K, b: K) => number;

export const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** How a tree compares keys (see bound). */
const NUM = 0;
const BIG = 1;
const CMP = 2;

/**
 * Entries per node at most. Smaller nodes make a path copy cheaper (one copy per level
 * and clone) and a tree deeper; 16 and 64 measured no better on vm200k.
 */
const MAX = 32;
/** Fewer entries than this and a non-root node is merged with or refilled from a sibling. */
const MIN = MAX >> 2;

/**
 * Owner tokens come from a counter: only their identity matters (a token is never
 * compared but for equality), so the counter is no source of nondeterminism.
 */
let lastOwner = 0;

/** A leaf (data: values) or an internal node (data: children), by its height in its tree. */
class Node<K> {
  constructor(
    public owner: number,
    public keys: K[],
    public data: unknown[],
    /** `keys` belongs to this node alone (else it is shared with the node's original). */
    public mine: boolean,
  ) {}
}

/** n's keys, for writing (n is owned): copied first while shared. */
function wkeys<K>(n: Node<K>): K[] {
  if (!n.mine) {
    n.keys = n.keys.slice();
    n.mine = true;
  }
  return n.keys;
}

/** Sets key i of n (internal, owned) to the smallest key of child c, if not already. */
function setMin<K>(n: Node<K>, i: number, c: Node<K>): void {
  if (n.keys[i] !== c.keys[0]) wkeys(n)[i] = c.keys[0]!;
}

/** Keeps n's first len entries. */
function truncate<K>(n: Node<K>, len: number): void {
  if (n.mine) n.keys.length = len;
  else {
    n.keys = n.keys.slice(0, len);
    n.mine = true;
  }
  n.data.length = len;
}

/**
 * First index of `a` (sorted) whose key is > k (strict) or >= k. Numbers use hw's
 * sorted-array search; bigints and comparators have their own loops so that each `<`
 * site sees one key type only and V8 keeps it monomorphic.
 */
function bound<K>(a: readonly K[], k: K, strict: boolean, mode: number, cmp: Comparator<K>): number {
  let lo = 0;
  let hi = a.length;
  if (mode === NUM) return sortedBound(a as unknown as readonly number[], k as unknown as number, strict);
  if (mode === BIG) {
    const n = a as unknown as readonly bigint[];
    const x = k as unknown as bigint;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (strict ? n[mid]! <= x : n[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
  } else {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = cmp(a[mid]!, k);
      if (strict ? c <= 0 : c < 0) lo = mid + 1;
      else hi = mid;
    }
  }
  return lo;
}

/** Inserts in place without splice (which allocates the array of removed elements). */
function insAt<T>(a: T[], i: number, x: T): void {
  let j = a.length;
  a.push(x);
  for (; j > i; j--) a[j] = a[j - 1]!;
  a[i] = x;
}

function delAt<T>(a: T[], i: number): void {
  const n = a.length - 1;
  for (let j = i; j < n; j++) a[j] = a[j + 1]!;
  a.pop();
}

/** Moves the upper half of an overflowing node to a new right sibling. */
function split<K>(n: Node<K>, owner: number): Node<K> {
  const half = n.keys.length >> 1;
  const right = new Node(owner, n.keys.slice(half), n.data.slice(half), true);
  truncate(n, half);
  return right;
}

/** The root of every new tree; owner 0 is no tree's token, so it is never written. */
const EMPTY = new Node<never>(0, [], [], false);

const natural = <K>(a: K, b: K): number => (a < b ? -1 : a > b ? 1 : 0);

export class BTree<K, V> {
  private root: Node<K> = EMPTY;
  private height = 0;
  private owner = ++lastOwner;
  private count = 0;
  private readonly mode: number;
  private readonly cmp: Comparator<K>;
  /** Scratch results of the recursive writers (one write runs at a time). */
  private spill: Node<K> | null = null;
  private changed = false;

  /**
   * `compare` orders the keys; without one, keys are numbers in natural order (NaN not
   * allowed).
   */
  constructor(
    entries?: readonly (readonly [K, V])[],
    private readonly compare?: Comparator<K>,
  ) {
    this.cmp = compare ?? natural;
    this.mode = compare === undefined ? NUM : compare === (cmpBig as unknown) ? BIG : CMP;
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  get size(): number {
    return this.count;
  }

  /**
   * A tree with the same contents in O(1); writes to either never show in the other.
   * This tree takes a new token too (so tree objects must never be frozen).
   */
  clone(): BTree<K, V> {
    // Built by the constructor, so every tree has one hidden class.
    const t = new BTree<K, V>(undefined, this.compare);
    t.root = this.root;
    t.height = this.height;
    t.count = this.count;
    this.owner = ++lastOwner;
    return t;
  }

  get(key: K, defaultValue?: V): V | undefined {
    const n = this.leafOf(key);
    if (n === null) return defaultValue;
    const u = bound(n.keys, key, true, this.mode, this.cmp);
    return u > 0 && this.eq(n.keys[u - 1]!, key) ? (n.data[u - 1] as V) : defaultValue;
  }

  /** Sets key to value (keeping an existing value when !overwrite); true when the key is new. */
  set(key: K, value: V, overwrite = true): boolean {
    this.changed = false;
    const r = this.ins(this.root, this.height, key, value, overwrite);
    const s = this.spill;
    if (s !== null) {
      this.spill = null;
      this.root = new Node(this.owner, [r.keys[0]!, s.keys[0]!], [r, s], true);
      this.height++;
    } else this.root = r;
    return this.changed;
  }

  /** Removes key; true when it was there. */
  delete(key: K): boolean {
    this.changed = false;
    const r = this.del(this.root, this.height, key);
    if (!this.changed) return false;
    this.count--;
    // A root with one child makes the tree one level shorter.
    let root = r;
    for (; this.height > 0 && root.data.length === 1; this.height--) root = root.data[0] as Node<K>;
    this.root = root;
    return true;
  }

  /**
   * A tree with key set (this one unchanged). As in sorted-btree, an existing key keeps
   * its value unless overwrite is true, and then the result is this tree itself.
   */
  with(key: K, value: V, overwrite?: boolean): BTree<K, V> {
    const t = this.clone();
    return t.set(key, value, overwrite === true) || overwrite ? t : this;
  }

  /** A new tree without key (this one unchanged). */
  without(key: K): BTree<K, V> {
    const t = this.clone();
    t.delete(key);
    return t;
  }

  /** The pair with the largest key <= key. */
  getPairOrNextLower(key: K): [K, V] | undefined {
    const n = this.leafOf(key);
    if (n === null) return undefined;
    const u = bound(n.keys, key, true, this.mode, this.cmp);
    return u === 0 ? undefined : [n.keys[u - 1]!, n.data[u - 1] as V];
  }

  /** The value with the largest key <= key (getPairOrNextLower without the pair array). */
  valueOrNextLower(key: K): V | undefined {
    const n = this.leafOf(key);
    if (n === null) return undefined;
    const u = bound(n.keys, key, true, this.mode, this.cmp);
    return u === 0 ? undefined : (n.data[u - 1] as V);
  }

  /** The pair with the smallest key > key. */
  nextHigherPair(key: K): [K, V] | undefined {
    const { mode, cmp } = this;
    let n = this.root;
    // The subtree right of the search path at the lowest level that has one: where the
    // next key lives when the leaf has none above `key`.
    let next: Node<K> | null = null;
    let nextH = 0;
    for (let h = this.height; h > 0; h--) {
      const u = bound(n.keys, key, true, mode, cmp);
      const i = u > 0 ? u - 1 : 0;
      if (i + 1 < n.data.length) {
        next = n.data[i + 1] as Node<K>;
        nextH = h - 1;
      }
      n = n.data[i] as Node<K>;
    }
    const u = bound(n.keys, key, true, mode, cmp);
    if (u < n.keys.length) return [n.keys[u]!, n.data[u] as V];
    if (next === null) return undefined;
    for (; nextH > 0; nextH--) next = next.data[0] as Node<K>;
    return [next.keys[0]!, next.data[0] as V];
  }

  /**
   * Calls onFound for each pair with low <= key < high (<= high with includeHigh), in key
   * order; returns how many. onFound must not write this tree.
   */
  forRange(low: K, high: K, includeHigh: boolean, onFound: (k: K, v: V, counter: number) => void): number {
    return this.walk(this.root, this.height, low, high, includeHigh, onFound, 0);
  }

  /** The pairs from lowestKey on (all without it), in key order. */
  entries(lowestKey?: K): IterableIterator<[K, V]> {
    return this.cursor(lowestKey, (k, v) => [k, v]);
  }

  values(lowestKey?: K): IterableIterator<V> {
    return this.cursor(lowestKey, (_, v) => v);
  }

  /** A cursor at the first key >= lowestKey (at the first key without it). */
  private cursor<T>(lowestKey: K | undefined, out: (k: K, v: V) => T): Cursor<K, V, T> {
    const nodes: Node<K>[] = [];
    const at: number[] = [];
    let n = this.root;
    for (let h = this.height; ; h--) {
      nodes.push(n);
      let i = 0;
      if (lowestKey !== undefined) {
        const u = bound(n.keys, lowestKey, h > 0, this.mode, this.cmp);
        i = h === 0 ? u : u > 0 ? u - 1 : 0;
      }
      at.push(i);
      if (h === 0) return new Cursor(nodes, at, out);
      n = n.data[i] as Node<K>;
    }
  }

  /** The leaf whose range holds key; null when key is below every key in the tree. */
  private leafOf(key: K): Node<K> | null {
    const { mode, cmp } = this;
    let n = this.root;
    for (let h = this.height; h > 0; h--) {
      const u = bound(n.keys, key, true, mode, cmp);
      if (u === 0) return null;
      n = n.data[u - 1] as Node<K>;
    }
    return n;
  }

  private eq(a: K, b: K): boolean {
    return this.mode === CMP ? this.cmp(a, b) === 0 : a === b;
  }

  /** n itself when this tree owns it, else a copy it owns. */
  private own(n: Node<K>): Node<K> {
    return n.owner === this.owner ? n : new Node(this.owner, n.keys, n.data.slice(), false);
  }

  /**
   * Inserts into subtree n of height h. Returns the node that now stands for n (n, or
   * its copy when n is shared, or n untouched when nothing changed); an overflow leaves
   * the new right sibling in `spill`.
   */
  private ins(n: Node<K>, h: number, key: K, value: V, overwrite: boolean): Node<K> {
    const u = bound(n.keys, key, true, this.mode, this.cmp);
    if (h === 0) {
      if (u > 0 && this.eq(n.keys[u - 1]!, key)) {
        if (!overwrite) return n;
        n = this.own(n);
        n.data[u - 1] = value;
        return n;
      }
      this.changed = true;
      this.count++;
      // A shared leaf is copied with the new entry in one pass.
      if (n.owner !== this.owner) n = new Node(this.owner, arrayInserted(n.keys, u, key), arrayInserted(n.data, u, value), true);
      else {
        insAt(wkeys(n), u, key);
        insAt(n.data, u, value);
      }
      if (n.keys.length > MAX) this.spill = split(n, this.owner);
      return n;
    }
    const i = u > 0 ? u - 1 : 0;
    const c = n.data[i] as Node<K>;
    const c2 = this.ins(c, h - 1, key, value, overwrite);
    if (c2 === c && this.spill === null && u > 0) return n;
    n = this.own(n);
    n.data[i] = c2;
    // A new smallest key (u === 0) goes down the leftmost child.
    if (u === 0) wkeys(n)[0] = key;
    const s = this.spill;
    if (s !== null) {
      this.spill = null;
      insAt(wkeys(n), i + 1, s.keys[0]!);
      insAt(n.data, i + 1, s);
      if (n.keys.length > MAX) this.spill = split(n, this.owner);
    }
    return n;
  }

  /** Removes key from subtree n of height h; returns the node that now stands for n. */
  private del(n: Node<K>, h: number, key: K): Node<K> {
    const u = bound(n.keys, key, true, this.mode, this.cmp);
    if (u === 0) return n;
    const i = u - 1;
    if (h === 0) {
      if (!this.eq(n.keys[i]!, key)) return n;
      this.changed = true;
      if (n.owner !== this.owner) return new Node(this.owner, arrayRemoved(n.keys, i), arrayRemoved(n.data, i), true);
      delAt(wkeys(n), i);
      delAt(n.data, i);
      return n;
    }
    const c2 = this.del(n.data[i] as Node<K>, h - 1, key);
    if (!this.changed) return n;
    n = this.own(n);
    n.data[i] = c2;
    if (c2.keys.length >= MIN) setMin(n, i, c2);
    else this.refill(n, i);
    return n;
  }

  /** Child i of n (owned) fell below MIN: merge it with a sibling, or even the two out. */
  private refill(n: Node<K>, i: number): void {
    if (n.data.length === 1) {
      // Only the root has one child (delete() then drops a level).
      const c = n.data[0] as Node<K>;
      if (c.keys.length > 0) setMin(n, 0, c);
      return;
    }
    const li = i > 0 ? i - 1 : 0;
    const left = this.own(n.data[li] as Node<K>);
    const right = n.data[li + 1] as Node<K>;
    n.data[li] = left;
    const ll = left.keys.length;
    const rl = right.keys.length;
    if (ll + rl <= MAX) {
      const lk = wkeys(left);
      for (let j = 0; j < rl; j++) {
        lk.push(right.keys[j]!);
        left.data.push(right.data[j]);
      }
      delAt(wkeys(n), li + 1);
      delAt(n.data, li + 1);
    } else {
      // Even the two out; the right one is rebuilt whichever way entries move.
      const want = (ll + rl) >> 1;
      let r: Node<K>;
      if (ll > want) {
        r = new Node(this.owner, left.keys.slice(want).concat(right.keys), left.data.slice(want).concat(right.data), true);
        truncate(left, want);
      } else {
        const lk = wkeys(left);
        for (let j = 0; j < want - ll; j++) {
          lk.push(right.keys[j]!);
          left.data.push(right.data[j]);
        }
        r = new Node(this.owner, right.keys.slice(want - ll), right.data.slice(want - ll), true);
      }
      n.data[li + 1] = r;
      setMin(n, li + 1, r);
    }
    if (left.keys.length > 0) setMin(n, li, left);
  }

  private walk(n: Node<K>, h: number, low: K, high: K, incl: boolean, f: (k: K, v: V, counter: number) => void, count: number): number {
    const { mode, cmp } = this;
    const end = bound(n.keys, high, incl, mode, cmp);
    if (h === 0) {
      for (let i = bound(n.keys, low, false, mode, cmp); i < end; i++) f(n.keys[i]!, n.data[i] as V, count++);
      return count;
    }
    const u = bound(n.keys, low, true, mode, cmp);
    for (let i = u > 0 ? u - 1 : 0; i < end; i++) count = this.walk(n.data[i] as Node<K>, h - 1, low, high, incl, f, count);
    return count;
  }
}

/** An in-order iterator over a tree's leaves; the tree must not be written meanwhile. */
class Cursor<K, V, T> implements IterableIterator<T> {
  constructor(
    /** The path from the root to the current leaf, and the index taken at each level. */
    private readonly nodes: Node<K>[],
    private readonly at: number[],
    private readonly out: (k: K, v: V) => T,
  ) {}

  [Symbol.iterator](): IterableIterator<T> {
    return this;
  }

  next(): IteratorResult<T> {
    const { nodes, at } = this;
    const leafLevel = nodes.length - 1;
    let leaf = nodes[leafLevel]!;
    if (at[leafLevel]! >= leaf.keys.length) {
      // Climb to the lowest level with a next child, then down its leftmost path.
      let l = leafLevel - 1;
      while (l >= 0 && at[l]! + 1 >= nodes[l]!.data.length) l--;
      if (l < 0) {
        at[leafLevel] = leaf.keys.length;
        return { done: true, value: undefined };
      }
      at[l]!++;
      for (; l < leafLevel; l++) {
        nodes[l + 1] = nodes[l]!.data[at[l]!] as Node<K>;
        at[l + 1] = 0;
      }
      leaf = nodes[leafLevel]!;
      if (leaf.keys.length === 0) return { done: true, value: undefined };
    }
    const i = at[leafLevel]!++;
    return { done: false, value: this.out(leaf.keys[i]!, leaf.data[i] as V) };
  }
}

export function emptyBig<V>(): BTree<bigint, V> {
  return new BTree<bigint, V>(undefined, cmpBig);
}

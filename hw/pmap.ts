// Persistent hash array mapped trie (HAMT) keyed by a pair (k1, k2): k1 a number or
// string, k2 a number (0 when unused). Used for everything in hw/ that may grow
// (contexts, domains, IOTLB entries) so that every update copies only the O(log32 n)
// nodes on one path and old maps stay valid and cheap (time travel keeps them).
// Invariant: no node reachable from a published PMap is ever written again; new nodes
// are built fresh and then shared. Iteration order is the hash order: deterministic
// (the hash is a pure function of the key) but NOT sorted; callers that need an order
// sort explicitly.

const BITS = 5;
const MASK = 31;

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

function hashNumber(n: number): number {
  // Exact for integers up to 2^53: split into the low and high 32-bit halves.
  const lo = n >>> 0;
  const hi = ((n - lo) / 4294967296) | 0;
  return mix(lo ^ Math.imul(hi, 0x9e3779b1));
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix(h);
}

export function hashKey(k1: number | string, k2: number): number {
  const h1 = typeof k1 === 'number' ? hashNumber(k1) : hashString(k1);
  return k2 === 0 ? h1 : mix(h1 ^ Math.imul(hashNumber(k2), 0x27d4eb2d));
}

class Leaf<V> {
  constructor(
    readonly hash: number,
    readonly k1: number | string,
    readonly k2: number,
    readonly value: V,
  ) {}
}

class Collision<V> {
  constructor(
    readonly hash: number,
    readonly leaves: readonly Leaf<V>[],
  ) {}
}

class Branch<V> {
  constructor(
    readonly bitmap: number,
    readonly kids: readonly Kid<V>[],
  ) {}
}

type Kid<V> = Leaf<V> | Collision<V> | Branch<V>;

const EMPTY_BRANCH = new Branch<never>(0, []);

function getIn<V>(node: Branch<V>, h: number, k1: number | string, k2: number): V | undefined {
  let shift = 0;
  let cur: Kid<V> = node;
  for (;;) {
    if (cur instanceof Branch) {
      const bit = 1 << ((h >>> shift) & MASK);
      if ((cur.bitmap & bit) === 0) return undefined;
      cur = cur.kids[popcount(cur.bitmap & (bit - 1))]!;
      shift += BITS;
    } else if (cur instanceof Leaf) {
      return cur.k1 === k1 && cur.k2 === k2 ? cur.value : undefined;
    } else {
      if (cur.hash !== h) return undefined;
      for (const l of cur.leaves) if (l.k1 === k1 && l.k2 === k2) return l.value;
      return undefined;
    }
  }
}

// Builds the smallest subtree holding two leaves with different paths below `shift`.
function pair<V>(a: Leaf<V> | Collision<V>, b: Leaf<V>, shift: number): Kid<V> {
  if (a.hash === b.hash) {
    const leaves = a instanceof Collision ? [...a.leaves, b] : [a, b];
    return new Collision(a.hash, leaves);
  }
  const ia = (a.hash >>> shift) & MASK;
  const ib = (b.hash >>> shift) & MASK;
  if (ia === ib) return new Branch(1 << ia, [pair(a, b, shift + BITS)]);
  return new Branch((1 << ia) | (1 << ib), ia < ib ? [a, b] : [b, a]);
}

interface Delta {
  added: boolean;
}

function setIn<V>(node: Branch<V>, leaf: Leaf<V>, shift: number, d: Delta): Branch<V> {
  const bit = 1 << ((leaf.hash >>> shift) & MASK);
  const pos = popcount(node.bitmap & (bit - 1));
  if ((node.bitmap & bit) === 0) {
    d.added = true;
    // A copy with the leaf inserted at pos: one allocation (splice on a copy is slower).
    const n = node.kids.length;
    const kids = new Array<Kid<V>>(n + 1);
    for (let i = 0; i < pos; i++) kids[i] = node.kids[i]!;
    kids[pos] = leaf;
    for (let i = pos; i < n; i++) kids[i + 1] = node.kids[i]!;
    return new Branch(node.bitmap | bit, kids);
  }
  const kid = node.kids[pos]!;
  let next: Kid<V>;
  if (kid instanceof Branch) {
    next = setIn(kid, leaf, shift + BITS, d);
  } else if (kid instanceof Leaf) {
    if (kid.k1 === leaf.k1 && kid.k2 === leaf.k2) {
      if (kid.value === leaf.value) return node;
      next = leaf;
    } else {
      d.added = true;
      next = pair(kid, leaf, shift + BITS);
    }
  } else if (kid.hash === leaf.hash) {
    const i = kid.leaves.findIndex((l) => l.k1 === leaf.k1 && l.k2 === leaf.k2);
    const leaves = kid.leaves.slice();
    if (i < 0) {
      d.added = true;
      leaves.push(leaf);
    } else leaves[i] = leaf;
    next = new Collision(kid.hash, leaves);
  } else {
    d.added = true;
    next = pair(kid, leaf, shift + BITS);
  }
  const kids = node.kids.slice();
  kids[pos] = next;
  return new Branch(node.bitmap, kids);
}

// Returns the same node when the key is absent, undefined when the node became empty.
function deleteIn<V>(
  node: Branch<V>,
  h: number,
  k1: number | string,
  k2: number,
  shift: number,
): Kid<V> | undefined {
  const bit = 1 << ((h >>> shift) & MASK);
  if ((node.bitmap & bit) === 0) return node;
  const pos = popcount(node.bitmap & (bit - 1));
  const kid = node.kids[pos]!;
  let next: Kid<V> | undefined;
  if (kid instanceof Branch) {
    next = deleteIn(kid, h, k1, k2, shift + BITS);
    if (next === kid) return node;
  } else if (kid instanceof Leaf) {
    if (kid.k1 !== k1 || kid.k2 !== k2) return node;
    next = undefined;
  } else {
    const leaves = kid.leaves.filter((l) => l.k1 !== k1 || l.k2 !== k2);
    if (leaves.length === kid.leaves.length) return node;
    next = leaves.length === 1 ? leaves[0]! : new Collision(kid.hash, leaves);
  }
  if (next === undefined) {
    if (node.bitmap === bit) return undefined;
    const kids = node.kids.slice();
    kids.splice(pos, 1);
    const rest = new Branch(node.bitmap & ~bit, kids);
    // Collapse a branch left with a single leaf so lookups stay short.
    if (shift > 0 && kids.length === 1 && !(kids[0] instanceof Branch)) return kids[0];
    return rest;
  }
  if (!(next instanceof Branch) && node.bitmap === bit && shift > 0) return next;
  const kids = node.kids.slice();
  kids[pos] = next;
  return new Branch(node.bitmap, kids);
}

function* walkKids<V>(node: Kid<V>): Generator<Leaf<V>> {
  if (node instanceof Leaf) yield node;
  else if (node instanceof Collision) yield* node.leaves;
  else for (const k of node.kids) yield* walkKids(k);
}

export class PMap<V> {
  private constructor(
    /** @internal HAMT root; public only so structural types (immer Draft) stay compatible. */
    readonly root: Branch<V>,
    readonly size: number,
  ) {}

  private static readonly EMPTY = new PMap<never>(EMPTY_BRANCH, 0);

  static empty<V>(): PMap<V> {
    return PMap.EMPTY as PMap<V>;
  }

  get(k1: number | string, k2 = 0): V | undefined {
    return getIn(this.root, hashKey(k1, k2), k1, k2);
  }

  has(k1: number | string, k2 = 0): boolean {
    return this.get(k1, k2) !== undefined;
  }

  set(k1: number | string, value: V): PMap<V> {
    return this.set2(k1, 0, value);
  }

  set2(k1: number | string, k2: number, value: V): PMap<V> {
    const d: Delta = { added: false };
    const root = setIn(this.root, new Leaf(hashKey(k1, k2), k1, k2, value), 0, d);
    if (root === this.root) return this;
    return new PMap(root, this.size + (d.added ? 1 : 0));
  }

  delete(k1: number | string, k2 = 0): PMap<V> {
    const root = deleteIn(this.root, hashKey(k1, k2), k1, k2, 0);
    if (root === this.root) return this;
    // deleteIn never collapses at shift 0, so the root is a branch or gone.
    if (!(root instanceof Branch)) return PMap.empty();
    return new PMap(root, this.size - 1);
  }

  *entries(): Generator<[number | string, number, V]> {
    for (const l of walkKids(this.root)) yield [l.k1, l.k2, l.value];
  }

  *values(): Generator<V> {
    for (const l of walkKids(this.root)) yield l.value;
  }
}

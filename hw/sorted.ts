// Persistent sorted list of values that carry their own numeric key (`v.key`), as a list
// of small sorted chunks: an update copies one chunk (<= CHUNK values) and the chunk
// list; exact lookups and range queries cost a binary search over chunk heads and one
// inside a chunk (plus the hits). Values carry the key so a chunk is one array, not a
// key array and a value array. Meant for a few thousand values at most (one IOTLB's
// entries of one domain and depth). Invariants: keys are unique and ascending across
// the chunks; no chunk is empty; nothing is written after construction.

const CHUNK = 32;

export interface Keyed {
  readonly key: number;
}

type Chunk<V> = readonly V[];

/** Index of the first value of `a` (sorted) whose key is >= k. */
function lower<V extends Keyed>(a: Chunk<V>, k: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]!.key < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the chunk that holds k if anything does: the last chunk whose head is <= k (0 if none). */
function chunkFor<V extends Keyed>(chunks: readonly Chunk<V>[], k: number): number {
  let lo = 1;
  let hi = chunks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (chunks[mid]![0]!.key <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** A copy of `a` with x inserted at pos (one allocation, no splice). */
function inserted<T>(a: readonly T[], pos: number, x: T): T[] {
  const n = a.length;
  const out = new Array<T>(n + 1);
  for (let i = 0; i < pos; i++) out[i] = a[i]!;
  out[pos] = x;
  for (let i = pos; i < n; i++) out[i + 1] = a[i]!;
  return out;
}

/** A copy of `a` without the element at pos. */
function removed<T>(a: readonly T[], pos: number): T[] {
  const n = a.length - 1;
  const out = new Array<T>(n);
  for (let i = 0; i < pos; i++) out[i] = a[i]!;
  for (let i = pos; i < n; i++) out[i] = a[i + 1]!;
  return out;
}

/** A copy of `a` with x at pos. */
function replaced<T>(a: readonly T[], pos: number, x: T): T[] {
  const out = a.slice();
  out[pos] = x;
  return out;
}

export class SortedList<V extends Keyed> {
  private constructor(
    /** @internal Public only so structural types (immer Draft) stay compatible. */
    readonly chunks: readonly Chunk<V>[],
    readonly size: number,
  ) {}

  private static readonly EMPTY = new SortedList<never>([], 0);

  static empty<V extends Keyed>(): SortedList<V> {
    return SortedList.EMPTY as SortedList<V>;
  }

  /** The list with v (replacing any value with the same key). */
  set(v: V): SortedList<V> {
    if (this.size === 0) return new SortedList([[v]], 1);
    const k = v.key;
    const ci = chunkFor(this.chunks, k);
    const c = this.chunks[ci]!;
    const pos = lower(c, k);
    if (pos < c.length && c[pos]!.key === k) return new SortedList(replaced(this.chunks, ci, replaced(c, pos, v)), this.size);
    const grown = inserted(c, pos, v);
    if (grown.length <= CHUNK) return new SortedList(replaced(this.chunks, ci, grown), this.size + 1);
    const half = grown.length >>> 1;
    const chunks = new Array<Chunk<V>>(this.chunks.length + 1);
    for (let i = 0; i < ci; i++) chunks[i] = this.chunks[i]!;
    chunks[ci] = grown.slice(0, half);
    chunks[ci + 1] = grown.slice(half);
    for (let i = ci + 1; i < this.chunks.length; i++) chunks[i + 1] = this.chunks[i]!;
    return new SortedList(chunks, this.size + 1);
  }

  /** The list without the value of key k (this list when there is none). */
  delete(k: number): SortedList<V> {
    if (this.size === 0) return this;
    const ci = chunkFor(this.chunks, k);
    const c = this.chunks[ci]!;
    const pos = lower(c, k);
    if (pos >= c.length || c[pos]!.key !== k) return this;
    if (this.size === 1) return SortedList.empty();
    if (c.length === 1) return new SortedList(removed(this.chunks, ci), this.size - 1);
    return new SortedList(replaced(this.chunks, ci, removed(c, pos)), this.size - 1);
  }

  get(k: number): V | undefined {
    const chunks = this.chunks;
    if (chunks.length === 0) return undefined;
    const c = chunks[chunkFor(chunks, k)]!;
    const pos = lower(c, k);
    return pos < c.length && c[pos]!.key === k ? c[pos] : undefined;
  }

  /** The list without the values whose keys are in [lo, hi) (this list when there are
   *  none). Rebuilds only the chunks that hold them. */
  deleteRange(lo: number, hi: number): SortedList<V> {
    if (this.size === 0 || !(lo < hi)) return this;
    const src = this.chunks;
    const n = src.length;
    const c0 = chunkFor(src, lo);
    let chunks: Chunk<V>[] | undefined;
    let size = this.size;
    let ci = c0;
    for (; ci < n && src[ci]![0]!.key < hi; ci++) {
      const c = src[ci]!;
      const a = lower(c, lo);
      const b = lower(c, hi);
      if (a === b) {
        if (chunks) chunks.push(c);
        continue;
      }
      if (!chunks) chunks = src.slice(0, ci);
      size -= b - a;
      if (b - a === c.length) continue;
      const kept = new Array<V>(c.length - (b - a));
      let j = 0;
      for (let i = 0; i < a; i++) kept[j++] = c[i]!;
      for (let i = b; i < c.length; i++) kept[j++] = c[i]!;
      chunks.push(kept);
    }
    if (!chunks) return this;
    if (size === 0) return SortedList.empty();
    for (; ci < n; ci++) chunks.push(src[ci]!);
    return new SortedList(chunks, size);
  }

  /** Calls f for every value with lo <= key < hi, in key order. */
  forRange(lo: number, hi: number, f: (v: V) => void): void {
    const chunks = this.chunks;
    if (chunks.length === 0) return;
    for (let ci = chunkFor(chunks, lo); ci < chunks.length; ci++) {
      const c = chunks[ci]!;
      for (let i = c[0]!.key < lo ? lower(c, lo) : 0; i < c.length; i++) {
        if (c[i]!.key >= hi) return;
        f(c[i]!);
      }
    }
  }

  /** All values in key order. */
  *values(): Generator<V> {
    for (const c of this.chunks) yield* c;
  }
}

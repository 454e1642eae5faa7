/*
 * btree.ts: the persistent B+tree (sorted-btree) with its CommonJS default export
 * unwrapped for ESM. Updates go through clone-then-mutate or with/without, so every
 * old version stays valid (copy-on-write nodes, O(log n) per update).
 */
import pkg from 'sorted-btree';

export const BTree = pkg.default;
export type BTree<K, V> = InstanceType<typeof pkg.default<K, V>>;

export const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

export function emptyBig<V>(): BTree<bigint, V> {
  return new BTree<bigint, V>(undefined, cmpBig);
}

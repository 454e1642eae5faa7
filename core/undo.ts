/*
 * undo.ts: the undo log of an in-place step (core/workingCopy.ts, Reused). A step that
 * writes a World in place must still leave it as it was when it fails; the few writes
 * such a step makes below the fields the working copy saves whole (a process's or
 * user's page counters, a user record created by the first charge, an entry of the
 * ctx's pages table written in place) record their old value here first, and a failed
 * step puts them back newest first.
 *
 * Invariant: while a log is active, every in-place write to a record or table an older
 * World state could be restored to goes through `record` before it happens; the log
 * is active only for the length of one in-place step.
 */
import { BTree } from './btree.js';

/** The old value of a key that did not exist. */
export const ABSENT: unique symbol = Symbol('absent');

export class UndoLog {
  /**
   * Triples: target (a plain record or a BTree), key, old value or ABSENT; the first `n`
   * slots are this step's. The array is reused from step to step (setting its length to
   * 0 made V8 allocate a new backing store every step); slots past `n` may still hold a
   * previous step's values until overwritten.
   */
  private readonly ops: unknown[] = [];
  private n = 0;

  record(target: object, key: PropertyKey, old: unknown): void {
    const ops = this.ops;
    ops[this.n] = target;
    ops[this.n + 1] = key;
    ops[this.n + 2] = old;
    this.n += 3;
  }

  /** Puts back every recorded value, newest first, and empties the log. */
  rollback(): void {
    const ops = this.ops;
    for (let i = this.n - 3; i >= 0; i -= 3) {
      const target = ops[i] as object;
      const key = ops[i + 1];
      const old = ops[i + 2];
      if (target instanceof BTree) {
        if (old === ABSENT) target.delete(key);
        else target.set(key, old);
      } else {
        const r = target as Record<PropertyKey, unknown>;
        if (old === ABSENT) delete r[key as PropertyKey];
        else r[key as PropertyKey] = old;
      }
    }
    this.n = 0;
  }

  clear(): void {
    this.n = 0;
  }
}

/** The log of the in-place step now running, if any (steps never nest). */
let active: UndoLog | null = null;

export function undoLog(): UndoLog | null {
  return active;
}

export function setUndoLog(log: UndoLog | null): void {
  active = log;
}

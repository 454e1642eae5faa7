/*
 * freeze.ts: whether new Worlds are frozen (Object.freeze) as they are made.
 *
 * Freezing is a safety net, not part of the semantics: a World is never written
 * after a step returns it, frozen or not (test/persistence.test.ts checks that by
 * hashing every old World again after the replay, with freezing off). Frozen
 * integer-keyed records (procs, files, ctxs, objects) move to dictionary elements in
 * V8, and copying one costs ~1 µs instead of ~60 ns, on every write path of every
 * step. So freezing is on by default (tests: an accidental write throws at once)
 * and the CLI turns it off for replay, gen, fuzz and bench, as immer itself used to
 * freeze only outside production.
 */
import { setAutoFreeze } from 'immer';

let on = true;

/** Turns freezing of new Worlds on or off (immer's auto-freeze and working-copy seals). */
export function setFreeze(enabled: boolean): void {
  on = enabled;
  setAutoFreeze(enabled);
}

export function freezing(): boolean {
  return on;
}

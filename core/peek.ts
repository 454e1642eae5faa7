/*
 * peek.ts: pure reads of a World (or any part of it) that may be an immer draft,
 * without drafting anything. Reading an object through a draft makes a draft of it
 * and shallow-copies its parent; a read-only scan (every open file, every object of
 * a ctx) or a lookup would pay that for every record it touches. `peek` returns the
 * draft's current value (its copy once written, else its base): a plain object whose
 * children are current too (drafts where they were drafted, originals elsewhere).
 * Never write through what peek returns; write through the draft.
 *
 * A handler running on a plain World (core/step.ts: a shallow op or a working copy)
 * has no draft anywhere in reach; step says so with `plainWorld`, and peek is then the
 * identity without looking up the draft-state symbol, a megamorphic load that was
 * ~2% of a vm-churn replay, where every MAP, UNMAP and DMA runs that way.
 */
import type { Draft } from 'immer';
import type { Platform } from './platform.js';
import type { World } from './world.js';

/** immer's draft-state key (Symbol.for, so it is the same symbol immer uses). */
const DRAFT_STATE = Symbol.for('immer-state');

interface DraftState {
  readonly base_: unknown;
  readonly copy_: unknown;
}

/** True only while step runs a handler on a plain World (no drafts reachable). */
let plain = false;

/** core/step.ts: a handler on a plain World starts (true) or ended (false). */
export function plainWorld(on: boolean): void {
  plain = on;
}

/** The current value of `x` without drafting it: `x` itself unless it is a draft. */
export function peek<T>(x: T): T {
  if (plain) return x;
  const s = (x as { [DRAFT_STATE]?: DraftState } | null | undefined)?.[DRAFT_STATE];
  return s === undefined ? x : ((s.copy_ ?? s.base_) as T);
}

/** The platform (never written after init) as a plain value, drafted or not: a draft's base has it. */
export function plat(d: Draft<World> | World): Platform {
  if (plain) return (d as World).platform;
  const s = (d as { [DRAFT_STATE]?: DraftState })[DRAFT_STATE];
  return s === undefined ? (d as World).platform : (s.base_ as World).platform;
}

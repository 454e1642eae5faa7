// In-place writes to hw's persistent structures, for the in-place replay step
// (core/workingCopy.ts's Reused copy, through core/hwsync.ts): while an epoch is open,
// a page-table node or table tagged with that epoch (made by an earlier operation of the
// same epoch) is written in place instead of being path-copied, and every such write to
// something that existed before the operation is first recorded in the undo log, so that
// a failed step can put it back. New nodes made while an epoch is open carry its tag.
// Invariants: epochs are never reused (a counter), so nothing made in an earlier epoch,
// or while no epoch was open (tag 0), is ever written in place; the owner of an epoch
// (core's in-place stepper) opens it only around a step on the one World whose hw holds
// that epoch's nodes, and takes a new epoch whenever it starts from another World, so
// no World it handed out before can see an in-place write.

/** Where in-place writes record the old value first (core/undo.ts's UndoLog). */
export interface HwUndo {
  record(target: object, key: PropertyKey, old: unknown): void;
}

/** Tag for nodes made now: the open epoch, else 0. */
export let epochTag = 0;
/** Tag of the nodes that may be written in place: the open epoch, else -1 (none). */
export let writableTag = -1;
/** The open epoch's undo log (null while none is open). */
export let undoSink: HwUndo | null = null;

let lastEpoch = 0;

/** A fresh epoch number (never 0, never handed out before). */
export function newEpoch(): number {
  return ++lastEpoch;
}

/** Opens `epoch` (from newEpoch) for in-place writes recorded in `log`. */
export function openEpoch(epoch: number, log: HwUndo): void {
  if (!(epoch > 0)) throw new Error(`bad hw epoch ${epoch}`);
  epochTag = epoch;
  writableTag = epoch;
  undoSink = log;
}

/** Back to persistent writes only. */
export function closeEpoch(): void {
  epochTag = 0;
  writableTag = -1;
  undoSink = null;
}

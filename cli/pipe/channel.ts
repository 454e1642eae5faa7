/*
 * channel.ts: what the replaying thread (index.ts) and the parsing worker (worker.ts)
 * agree on. Batches travel over a MessagePort; a shared Int32Array counts them both
 * ways, so that each side can block (Atomics.wait) on the other without an event loop:
 * the replay loop stays synchronous. Invariant: the worker is never more than AHEAD
 * batches in front of the replay (memory stays bounded on any trace size).
 */
import type { MessagePort } from 'node:worker_threads';

/** Indices in the shared counters. */
export const POSTED = 0; // batches the worker has posted
export const TAKEN = 1; // batches the replay has taken
export const STOP = 2; // set by the replay when it needs nothing more
export const ALIVE = 3; // bumped by the worker for every chunk it reads (its heartbeat)
export const COUNTERS = 4;

/**
 * How long the replay waits for a worker whose heartbeat stands still before it gives
 * up with an internal error: a worker killed from outside (out of memory) never posts
 * its Crash, and the blocked replay has no event loop to hear of the exit.
 */
export const STALL_MS = 30_000;

/** Batches the worker may post before the replay takes them. */
export const AHEAD = 4;
/** Items in the first batch (the replay waits for it), doubling up to the last size. */
export const FIRST_BATCH = 256;
export const MAX_BATCH = 4096;

export interface WorkerData {
  readonly path: string;
  readonly port: MessagePort;
  readonly counters: Int32Array;
}

/** What the worker posts when it died of an exception (anything else posted is a Batch). */
export interface Crash {
  readonly crash: string;
}

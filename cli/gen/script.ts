/*
 * script.ts: what a workload script is made of: Req (one entry asked for), Script
 * (a generator of Reqs that receives Outcomes), GenApi (what the driver offers a
 * script), and the two combinators every workload uses: op and interleave.
 */
import type { Outcome } from '../../events/index.js';
import type { Platform, World } from '../../core/index.js';
import type { Rng } from './rng.js';

/** One entry a script asks for: the entry's keys (without expect), and which outputs become which variables. */
export interface Req {
  readonly e: Readonly<Record<string, unknown>>;
  /** output field -> variable name ("$ifd3"); bound only when the outcome has that output. */
  readonly bind?: Readonly<Record<string, string>>;
}

/** A script yields entries and receives each one's outcome. */
export type Script = Generator<Req, void, Outcome>;

export interface GenApi {
  readonly rng: Rng;
  readonly platform: Platform;
  /** The World after the last generated entry (read it to decide, never write it). */
  world(): World;
  /** A fresh variable name: fresh('ifd') -> "$ifd1", "$ifd2", ... (never reused: a bound variable cannot be rebound). */
  fresh(prefix: string): string;
}

export interface Workload {
  readonly name: string;
  readonly doc: string;
  /** The whole trace as one endless script; the driver stops after the requested number of entries. */
  main(g: GenApi): Script;
}

/** Asks for one entry and returns its outcome: `const o = yield* op({...}, {fd: ifd})`. */
export function* op(e: Readonly<Record<string, unknown>>, bind?: Readonly<Record<string, string>>): Generator<Req, Outcome, Outcome> {
  return yield bind === undefined ? { e } : { e, bind };
}

/**
 * Runs several scripts interleaved one entry at a time (processes working at once).
 * `start` is asked for a new script whenever fewer than `max` run; it may return null
 * (nothing can start now). Ends when nothing runs and nothing can start.
 */
export function* interleave(rng: Rng, max: number, start: () => Script | null): Script {
  const live: Script[] = [];
  const last: (Outcome | undefined)[] = [];
  for (;;) {
    while (live.length < max) {
      const s = start();
      if (s === null) break;
      live.push(s);
      last.push(undefined);
    }
    if (live.length === 0) return;
    const i = rng.int(live.length);
    const prev = last[i];
    const r = prev === undefined ? live[i]!.next() : live[i]!.next(prev);
    if (r.done === true) {
      live.splice(i, 1);
      last.splice(i, 1);
      continue;
    }
    last[i] = yield r.value;
  }
}


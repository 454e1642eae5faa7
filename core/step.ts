/*
 * step.ts: one entry in, the next World and an Outcome out. Handlers are immer
 * recipes over a draft of the World; if a handler answers with an errno, its draft
 * is thrown away, so a failed operation changes nothing. The few kernel paths that
 * are documented as non-atomic (UNMAP failing part-way) call `keepOnError()`.
 *
 * No clock, no randomness, no I/O: the same World and Input give the same result.
 */
import { produce, type Draft } from 'immer';
import type { Input, InputOf, OpName, Outcome } from '../events/index.js';
import { assignWorld, shallowWorld, type Mutable, type World } from './world.js';
import { InPlace, type Copier } from './workingCopy.js';
import { memOf } from './mem.js';
import { plainWorld } from './peek.js';

export interface StepEnv {
  /** Keep the draft's changes even though the outcome is an errno. */
  keepOnError(): void;
}

export type Handler<K extends OpName> = (d: Draft<World>, i: InputOf<K>, env: StepEnv) => Outcome;
export type HandlerTable = { readonly [K in OpName]: Handler<K> };

export interface StepResult {
  readonly world: World;
  readonly outcome: Outcome;
}

/**
 * `shallow` ops only replace top-level fields of the World (a DMA replaces `hw`):
 * they run on a shallow copy instead of an immer draft, which keeps the hottest
 * operation of a replay free of proxy and freeze costs. Ops with a `copier` run on
 * the working copy it makes (core/workingCopy.ts) when it can bound their writes, and
 * as immer recipes otherwise.
 *
 * With `inPlace`, the step function is for one caller that never looks at a World
 * again once it has stepped it (the replay loop): it may return the World it was
 * given, written in place. MAP and UNMAP then keep writing one working copy, and a
 * shallow op copies its result back into that copy, so that a run of them allocates no
 * World at all. A failed step still leaves the World as it was (the working copy's undo
 * record and undo log). Tests, fuzzing and anything that keeps older Worlds use the default.
 * Never run another stepper (the persistent `step` included) on the World an in-place
 * stepper is writing and keep the result: its later in-place writes (process and user
 * records, the pages table, hw table pages of the open epoch) would show through it.
 *
 * Shallow and working-copy handlers run with core/peek.ts told that no draft is in
 * reach (`plainWorld`), so their peeks cost nothing; an immer recipe never runs so.
 */
/** What one op runs as: its handler, and which of the cheaper paths it may take. */
interface Route {
  readonly handler: Handler<OpName>;
  readonly shallow: boolean;
  readonly copier: Copier | undefined;
}

/** The `env` of one step: records whether the handler asked to keep its writes on error. */
class Env implements StepEnv {
  keep = false;
  keepOnError(): void {
    this.keep = true;
  }
}

/** A failed step's result: the World it started from, without the pins it logged (core/mem.ts). */
function failed(w: World, pinEnd: number, outcome: Outcome): StepResult {
  memOf(w).forgetFailedPins(pinEnd);
  return { world: w, outcome };
}

export function makeStep(
  table: HandlerTable,
  shallow: ReadonlySet<OpName> = new Set(),
  copiers: Partial<Record<OpName, Copier>> = {},
  inPlace = false,
) {
  const own = inPlace ? new InPlace() : undefined;
  // One Map lookup per step instead of three keyed reads of op-name records (measured:
  // those reads were most of step's own time in a replay).
  const routes = new Map<string, Route>();
  for (const op of Object.keys(table) as OpName[])
    routes.set(op, { handler: table[op] as Handler<OpName>, shallow: shallow.has(op), copier: copiers[op] });
  // One env per stepper: steps never nest, and no handler keeps it past its step.
  const env = new Env();
  return function step(w: World, input: Input): StepResult {
    const route = routes.get(input.op);
    if (route === undefined) throw new Error(`no handler for op ${input.op}`);
    const handler = route.handler;
    let outcome: Outcome | undefined;
    env.keep = false;
    const pinEnd = memOf(w).pinLogEnd();
    if (route.shallow) {
      const next = shallowWorld(w);
      plainWorld(true);
      try {
        outcome = handler(next as unknown as Draft<World>, input as InputOf<OpName>, env);
      } finally {
        plainWorld(false);
      }
      if (outcome.kind === 'errno' && !env.keep) return failed(w, pinEnd, outcome);
      if (own !== undefined && own.world === w) {
        assignWorld(w as Mutable<World>, next);
        return { world: w, outcome };
      }
      return { world: next, outcome };
    }
    const copy = route.copier?.(w, input, own);
    if (copy) {
      plainWorld(true);
      try {
        outcome = handler(copy.world as unknown as Draft<World>, input as InputOf<OpName>, env);
      } catch (e) {
        // A model bug: still close the undo log and the hw epoch (core/hwsync.ts) and
        // put back what was written in place, so nothing later writes through them.
        copy.rollback();
        throw e;
      } finally {
        plainWorld(false);
      }
      if (outcome.kind === 'errno' && !env.keep) {
        copy.rollback();
        return failed(w, pinEnd, outcome);
      }
      copy.seal();
      return { world: copy.world, outcome };
    }
    // The own copy's pages table is written in place across steps; an immer step must
    // not write it (it could fail and hand back this World).
    own?.release();
    const next = produce(w, (d) => {
      outcome = handler(d, input as InputOf<OpName>, env);
    });
    if (!outcome) throw new Error(`handler for ${input.op} returned no outcome`);
    if (outcome.kind === 'errno' && !env.keep) return failed(w, pinEnd, outcome);
    return { world: next, outcome };
  };
}

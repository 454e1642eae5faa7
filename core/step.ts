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
import { shallowWorld, type World } from './world.js';
import type { Copier } from './workingCopy.js';

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
 */
export function makeStep(
  table: HandlerTable,
  shallow: ReadonlySet<OpName> = new Set(),
  copiers: Partial<Record<OpName, Copier>> = {},
) {
  return function step(w: World, input: Input): StepResult {
    const handler = table[input.op] as Handler<OpName>;
    let outcome: Outcome | undefined;
    let keep = false;
    const env: StepEnv = { keepOnError: () => { keep = true; } };
    if (shallow.has(input.op)) {
      const next = shallowWorld(w);
      outcome = handler(next as unknown as Draft<World>, input as InputOf<OpName>, env);
      return { world: outcome.kind === 'errno' && !keep ? w : next, outcome };
    }
    const copy = copiers[input.op]?.(w, input);
    if (copy) {
      outcome = handler(copy.world as unknown as Draft<World>, input as InputOf<OpName>, env);
      if (outcome.kind === 'errno' && !keep) return { world: w, outcome };
      copy.seal();
      return { world: copy.world, outcome };
    }
    const next = produce(w, (d) => {
      outcome = handler(d, input as InputOf<OpName>, env);
    });
    if (!outcome) throw new Error(`handler for ${input.op} returned no outcome`);
    if (outcome.kind === 'errno' && !keep) return { world: w, outcome };
    return { world: next, outcome };
  };
}

/*
 * gen/: deterministic synthetic traces. A workload is a script (a generator
 * function) that yields one entry at a time and receives the model's outcome for
 * it, so it can react as a real program would (use the fd it got, give up when
 * BIND failed). The driver here steps the model on every entry and writes the
 * entry with an `expect` recording the actual outcome, outputs the script named
 * becoming variables ("$ifd3"): `replay --check` of a generated trace passes by
 * construction.
 *
 * Adding a workload: write `function* main(g: GenApi): Script` in its own file
 * and add a row to WORKLOADS.
 */
import { expectOf, isTraceError, printEntry, printHeader, type Bindings } from '../../events/index.js';
import { parseEntry, resolveEntry } from '../../events/index.js';
import { initialWorld, resolvePlatform, stateHash, step } from '../../core/index.js';
import { Rng } from './rng.js';
import type { GenApi, Workload } from './script.js';
import { basic } from './basic.js';
import { vmChurn } from './vmChurn.js';

export type { Req, Script, GenApi, Workload } from './script.js';
export { op, interleave } from './script.js';

export const WORKLOADS: Readonly<Record<string, Workload>> = {
  basic,
  'vm-churn': vmChurn,
};

export interface GenOptions {
  readonly entries: number;
  readonly seed: number;
  /** A built-in platform name. */
  readonly platform: string;
}

export interface GenResult {
  readonly entries: number;
  readonly lines: number;
  readonly stateHash: string;
}

export class GenError extends Error {}

/** Generates a trace, line by line, into `emit` (header first). Throws GenError for bad options. */
export function generate(workloadName: string, opts: GenOptions, emit: (line: string) => void): GenResult {
  const wl = WORKLOADS[workloadName];
  if (!wl) throw new GenError(`unknown workload "${workloadName}" (known: ${Object.keys(WORKLOADS).join(', ')})`);
  const p = resolvePlatform(opts.platform);
  if (!p.ok) throw new GenError(`--platform: ${p.message}`);
  let world = initialWorld(p.platform);
  const rng = new Rng(opts.seed);
  const counters = new Map<string, number>();
  const api: GenApi = {
    rng,
    platform: p.platform,
    world: () => world,
    fresh(prefix) {
      const n = (counters.get(prefix) ?? 0) + 1;
      counters.set(prefix, n);
      return `$${prefix}${n}`;
    },
  };
  emit(printHeader({
    trace: 'iommufd', version: 1, platform: opts.platform,
    meta: { title: `${wl.name} workload`, generator: `iommufd-sim gen ${wl.name}`, seed: opts.seed, entries: opts.entries },
  }));
  const vars: Bindings = new Map();
  const script = wl.main(api);
  let line = 1;
  let n = 0;
  let r = script.next();
  while (n < opts.entries && r.done !== true) {
    const req = r.value;
    line++;
    const entry = parseEntry({ ...req.e }, line);
    if (isTraceError(entry)) throw new Error(`workload ${wl.name} wrote a bad entry ${JSON.stringify(req.e)}: ${entry.message}`);
    const input = resolveEntry(entry, vars);
    if (isTraceError(input)) throw new Error(`workload ${wl.name} wrote an unresolvable entry ${JSON.stringify(req.e)}: ${input.message}`);
    const res = step(world, input);
    world = res.world;
    const outcome = res.outcome;
    const expect = expectOf(outcome);
    if (req.bind !== undefined && (outcome.kind === 'ok' || outcome.kind === 'errno')) {
      for (const [k, name] of Object.entries(req.bind)) {
        const v = outcome.out[k];
        if (v === undefined) continue;
        if (vars.has(name)) throw new Error(`workload ${wl.name} binds ${name} twice`);
        vars.set(name, v);
        expect[k] = name;
      }
    }
    const full = parseEntry({ ...req.e, expect }, line);
    if (isTraceError(full)) throw new Error(`workload ${wl.name}: expect ${JSON.stringify(expect)}: ${full.message}`);
    emit(printEntry(full));
    n++;
    r = script.next(outcome);
  }
  return { entries: n, lines: line, stateHash: stateHash(world) };
}

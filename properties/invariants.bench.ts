/*
 * invariants.bench.ts: what the invariants cost. Generates seeded traces (100 entries
 * each, from fresh Worlds), then replays them three ways: no checks, the incremental
 * checkAfter after every step, and a full checkAll after every step. Then measures
 * the fuzzer end to end (generation + step + checks) with invariants on and off.
 *
 *   node dist/properties/invariants.bench.js [traces=300] [seed=1]
 */
import fc from 'fast-check';
import { step, type World } from '../core/index.js';
import { isTraceError, parseEntry, resolveEntry, type Input } from '../events/index.js';
import { checkAfter, checkAll } from './invariants.js';
import { choicesArb } from './arbitraries.js';
import { Session, applyTemplate, fuzz, startWorld } from './fuzz.js';
import { nextTemplate } from './arbitraries.js';
import { setFreeze } from '../core/index.js';

// Measure what the CLI runs: Worlds unfrozen (core/freeze.ts).
setFreeze(false);

const traces = Number(process.argv[2] ?? 300);
const seed = Number(process.argv[3] ?? 1);
const start = startWorld('x86-vtd');

// Resolved inputs per trace, so the replays below time only step + checks.
const all: Input[][] = [];
for (const choices of fc.sample(choicesArb(100, 100), { seed, numRuns: traces })) {
  const s = new Session(start);
  const inputs: Input[] = [];
  for (const c of choices) {
    const t = nextTemplate(s, c);
    const e = parseEntry(t.raw as Record<string, unknown>, 2);
    if (isTraceError(e)) throw new Error(e.message);
    const i = resolveEntry(e, s.vars);
    if (isTraceError(i)) throw new Error(i.message);
    inputs.push(i);
    applyTemplate(s, t, false);
  }
  all.push(inputs);
}
const events = all.reduce((n, t) => n + t.length, 0);

function replay(mode: 'off' | 'incremental' | 'full'): number {
  const t0 = performance.now();
  let bad = 0;
  for (const inputs of all) {
    let w: World = start;
    for (const i of inputs) {
      const prev = w;
      w = step(prev, i).world;
      if (mode === 'incremental') bad += checkAfter(prev, w, i).length;
      else if (mode === 'full') bad += checkAll(w).length;
    }
  }
  if (bad) throw new Error(`${bad} violations in a clean model`);
  return events / ((performance.now() - t0) / 1000);
}

replay('off'); // warm up
const off = replay('off');
const inc = replay('incremental');
const full = replay('full');
const pct = (x: number) => `${Math.round((100 * x) / off)}%`;
console.log(`replay of ${traces} traces x 100 entries (${events} events), x86-vtd:`);
console.log(`  invariants off          ${Math.round(off)} events/s`);
console.log(`  incremental checkAfter  ${Math.round(inc)} events/s (${pct(inc)} of off)`);
console.log(`  full checkAll each step ${Math.round(full)} events/s (${pct(full)} of off)`);

for (const inv of [true, false]) {
  const t0 = performance.now();
  const r = fuzz({ seed, runs: traces, minEvents: 100, maxEvents: 100, invariants: inv });
  const s = (performance.now() - t0) / 1000;
  console.log(`fuzz, invariants ${inv ? 'on ' : 'off'}: ${r.runs} runs of 100 in ${s.toFixed(2)} s: ${Math.round(r.events / s)} events/s, ${Math.round(r.runs / s)} runs/s (one core)`);
}

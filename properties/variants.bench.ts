/*
 * variants.bench.ts: for each planted model bug (core/bugs.ts), how many seeded fuzz
 * runs the fuzzer needs to find it, the length of the shrunk counterexample, and the
 * time shrinking took. `npm run bench` runs it; numbers go in the closing notes.
 */
import { BUG_NAMES } from '../core/bugs.js';
import { fuzz } from './fuzz.js';
import { setFreeze } from '../core/index.js';

// Measure what the CLI runs: Worlds unfrozen (core/freeze.ts).
setFreeze(false);

const rows: string[] = [];
for (const bug of BUG_NAMES) {
  const t = performance.now();
  const r = fuzz({ seed: 1, runs: 2000, bugs: [bug] });
  const ms = performance.now() - t;
  const f = r.failure;
  rows.push(f
    ? `  ${bug.padEnd(26)} found at run ${String(f.foundAtRun).padStart(5)}  shrunk ${String(f.originalLength).padStart(3)} -> ${String(f.length).padStart(2)} entries in ${Math.round(f.shrinkMs)} ms  (${f.invariant}; total ${Math.round(ms)} ms)`
    : `  ${bug.padEnd(26)} NOT FOUND in ${r.runs} runs`);
}
process.stdout.write(`planted bugs, seed 1, budget 2000 runs of up to 100 entries:\n${rows.join('\n')}\n`);

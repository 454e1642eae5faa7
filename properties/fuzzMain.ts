/*
 * fuzzMain.ts: a thin command-line entry to the fuzzer (properties/fuzz.ts), until
 * `iommufd-sim fuzz` is wired to it.
 *
 *   node dist/properties/fuzzMain.js [--seed N] [--runs N | --time-ms N] [--platform P]
 *        [--out DIR] [--events N] [--bug NAME]... [--no-pid-reuse] [--no-invariants]
 *
 * Prints a progress line (runs, events/s, coverage) as it goes and a summary at the
 * end; exits 1 with the counterexample's path when an invariant fails, 2 on bad usage.
 */
import { BUG_NAMES, isBugName, type BugName } from '../core/bugs.js';
import { fuzz, type FuzzOptions, type FuzzProgress } from './fuzz.js';
import { setFreeze } from '../core/index.js';

// Measure what the CLI runs: Worlds unfrozen (core/freeze.ts).
setFreeze(false);

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: fuzzMain [--seed N] [--runs N | --time-ms N] [--platform P] [--out DIR] [--events N] [--bug NAME]... [--no-pid-reuse] [--no-invariants]\nbugs: ${BUG_NAMES.join(', ')}\n`);
  process.exit(2);
}

function parse(argv: readonly string[]): FuzzOptions & { quiet: boolean } {
  const o: { -readonly [K in keyof FuzzOptions]: FuzzOptions[K] } & { quiet: boolean } = { quiet: false, outDir: 'fuzz-out' };
  const bugs: BugName[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) usage(`${a} needs a non-negative integer`);
      return v;
    };
    switch (a) {
      case '--seed': o.seed = num(); break;
      case '--runs': o.runs = num(); break;
      case '--time-ms': o.timeMs = num(); break;
      case '--events': o.maxEvents = num(); break;
      case '--platform': o.platform = argv[++i] ?? usage('--platform needs a name'); break;
      case '--out': o.outDir = argv[++i] ?? usage('--out needs a directory'); break;
      case '--bug': {
        const b = argv[++i] ?? '';
        if (!isBugName(b)) usage(`unknown bug "${b}"`);
        bugs.push(b);
        break;
      }
      case '--no-pid-reuse': o.pidReuse = false; break;
      case '--no-invariants': o.invariants = false; break;
      case '--quiet': o.quiet = true; break;
      default: usage(`unknown option ${a}`);
    }
  }
  if (bugs.length) o.bugs = bugs;
  return o;
}

const top = (m: Record<string, number>, n = 6) =>
  Object.entries(m).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${k}:${v}`).join(' ');

function line(p: FuzzProgress): string {
  const c = p.coverage;
  return `runs ${p.runs}  events ${p.events}  ${Math.round(p.eventsPerSec)} ev/s  ops ${Object.keys(c.ops).length}  errnos ${Object.keys(c.errnos).length} [${top(c.errnos)}]  faults [${top(c.faults)}]`;
}

const opts = parse(process.argv.slice(2));
let last = 0;
const r = fuzz({
  ...opts,
  onProgress: (p) => {
    if (opts.quiet) return;
    const now = performance.now();
    if (now - last < 1000) return;
    last = now;
    process.stdout.write(line(p) + '\n');
  },
});
process.stdout.write(line({ runs: r.runs, events: r.events, eventsPerSec: r.eventsPerSec, coverage: r.coverage }) + '\n');
if (r.failure) {
  const f = r.failure;
  process.stdout.write(
    `FAIL ${f.invariant}: ${f.message}\n` +
      `  found at run ${f.foundAtRun} (${f.originalLength} entries), shrunk to ${f.length} entries in ${Math.round(f.shrinkMs)} ms (${f.ddminTests} ddmin replays)\n` +
      `  counterexample: ${f.file || '(no --out)'}\n`,
  );
  process.exit(1);
}
process.stdout.write('no invariant failed\n');

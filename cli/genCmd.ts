/*
 * genCmd.ts: `iommufd-sim gen WORKLOAD [--entries N] [--seed S] [--platform P]`.
 * Writes a deterministic synthetic trace to stdout: the same arguments give the
 * same bytes on every machine.
 */
import { BUILTIN_PLATFORMS } from '../core/index.js';
import { UsageError, intFlag, strFlag, type Parsed } from './args.js';
import { EXIT, type Command } from './command.js';
import { GenError, WORKLOADS, generate } from './gen/index.js';
import type { Io } from './io.js';
import { Progress } from './progress.js';

export const GEN_DEFAULTS = { entries: 1000, seed: 1, platform: 'x86-vtd' } as const;

function run(args: Parsed, io: Io): number {
  if (args.positional.length !== 1) throw new UsageError(`gen needs exactly one WORKLOAD (${Object.keys(WORKLOADS).join(', ')})`);
  const workload = args.positional[0]!;
  const entries = intFlag(args, 'entries', GEN_DEFAULTS.entries, 100_000_000);
  const seed = intFlag(args, 'seed', GEN_DEFAULTS.seed, 0xffffffff);
  const platform = strFlag(args, 'platform', GEN_DEFAULTS.platform);
  if (!WORKLOADS[workload]) throw new UsageError(`unknown workload "${workload}" (known: ${Object.keys(WORKLOADS).join(', ')})`);
  if (!BUILTIN_PLATFORMS[platform]) throw new UsageError(`--platform: unknown platform "${platform}" (built-ins: ${Object.keys(BUILTIN_PLATFORMS).join(', ')})`);
  // A progress bar on a terminal stderr for long generations (stdout is the trace).
  const progress = io.isTTY.stderr && entries > 20_000 ? new Progress(io, `gen ${workload}`, entries) : null;
  let n = -1;
  try {
    generate(workload, { entries, seed, platform }, (line) => {
      io.stdout.write(line + '\n');
      if (progress && ++n % 256 === 0) progress.update(n);
    });
    progress?.end();
  } catch (e) {
    progress?.end();
    if (e instanceof GenError) throw new UsageError(e.message);
    io.stdout.flush();
    io.stderr.write(`internal error in gen ${workload}: ${(e as Error).message}\n`);
    return EXIT.INTERNAL;
  }
  return EXIT.OK;
}

export const genCommand: Command = {
  name: 'gen',
  usage: 'gen WORKLOAD [--entries N] [--seed S] [--platform P]',
  summary: 'write a deterministic synthetic trace (every entry with its expect) to stdout',
  details: [
    'Generates N entries of WORKLOAD by running the model while generating: every entry carries an expect',
    'recording the actual outcome, and fds and IDs are variables ("$ifd1", "$devid3"), so',
    '`replay --check` of a generated trace passes by construction. Same arguments, same bytes.',
    '',
    'Workloads:',
    ...Object.values(WORKLOADS).map((w) => `  ${w.name.padEnd(12)} ${w.doc}`),
    '',
    `Defaults: --entries ${GEN_DEFAULTS.entries} --seed ${GEN_DEFAULTS.seed} --platform ${GEN_DEFAULTS.platform}`,
    `Platforms: ${Object.keys(BUILTIN_PLATFORMS).join(', ')}`,
  ].join('\n'),
  flags: [
    { name: 'entries', short: 'n', value: 'N', doc: `number of entries after the header (default ${GEN_DEFAULTS.entries})` },
    { name: 'seed', short: 's', value: 'S', doc: `PRNG seed, 0 to 2^32-1 (default ${GEN_DEFAULTS.seed})` },
    { name: 'platform', short: 'p', value: 'P', doc: `built-in platform (default ${GEN_DEFAULTS.platform})` },
  ],
  run,
};

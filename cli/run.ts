/*
 * run.ts: the subcommand table and the top-level dispatcher. `run(argv, io)` is
 * what main.ts calls and what tests call in-process; it returns the exit status and
 * never throws for bad input.
 */
import { OPS } from '../events/index.js';
import { UsageError, parseArgs, type FlagSpec } from './args.js';
import { EXIT, type Command } from './command.js';
import { genCommand } from './genCmd.js';
import type { Io } from './io.js';
import { replayCommand } from './replayCmd.js';
import { fuzzCommand } from './fuzzCmd.js';

const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', doc: 'show help for the command' };

const helpCommand: Command = {
  name: 'help',
  usage: 'help [COMMAND | ops]',
  summary: 'show help for a command, or the list of trace operations (help ops)',
  details: 'Without an argument: the command list. With a command: its usage, options and details. `help ops`: every op of trace format v1 with its fields and outputs.',
  flags: [],
  run(args, io) {
    const what = args.positional[0];
    if (what === undefined) io.stdout.write(overview());
    else if (what === 'ops') io.stdout.write(opsHelp());
    else {
      const c = COMMANDS[what];
      if (!c) throw new UsageError(`no command "${what}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
      io.stdout.write(commandHelp(c));
    }
    return EXIT.OK;
  },
};

export const COMMANDS: Readonly<Record<string, Command>> = {
  replay: replayCommand,
  gen: genCommand,
  fuzz: fuzzCommand,
  help: helpCommand,
};

function overview(): string {
  const lines = [
    'iommufd-sim: a deterministic model of Linux iommufd / VFIO DMA isolation',
    '',
    'Usage: iommufd-sim COMMAND [OPTIONS] [ARGS]',
    '',
    'Commands:',
    ...Object.values(COMMANDS).map((c) => `  ${c.name.padEnd(8)} ${c.summary}`),
    '',
    'Exit status: 0 ok, 1 divergence (with --check), 2 trace or usage error, 3 internal error.',
    'Run `iommufd-sim help COMMAND` or `iommufd-sim COMMAND --help` for details.',
  ];
  return lines.join('\n') + '\n';
}

function commandHelp(c: Command): string {
  const flags = [...c.flags, HELP_FLAG].map((f) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` ${f.value}` : ''}`;
    return `  ${left.padEnd(24)} ${f.doc}`;
  });
  return [`Usage: iommufd-sim ${c.usage}`, '', c.summary, '', 'Options:', ...flags, '', c.details, ''].join('\n');
}

function opsHelp(): string {
  const lines = ['Operations of trace format v1 (see shared/trace-format.md):', ''];
  for (const [name, s] of Object.entries(OPS)) {
    const fields = Object.keys(s.fields).filter((k) => !k.startsWith('__'));
    const out = s.out.length ? `  -> ${s.out.join(', ')}` : '';
    lines.push(`  ${name}`, `      ${s.doc}`, `      fields: ${fields.join(', ') || '(none)'}${out}`);
  }
  return lines.join('\n') + '\n';
}

/** Runs one command line. Returns the exit status. */
export function run(argv: readonly string[], io: Io): number {
  let code: number;
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h') {
      io.stdout.write(overview());
      code = name === undefined ? EXIT.USAGE : EXIT.OK;
      if (name === undefined) io.stderr.write('iommufd-sim: no command given\n');
    } else if (name === '--version' || name === '-V') {
      io.stdout.write('iommufd-sim 0.1.0 (trace format 1)\n');
      code = EXIT.OK;
    } else {
      const c = COMMANDS[name];
      if (!c) throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
      const args = parseArgs(rest, [...c.flags, HELP_FLAG]);
      if (args.flags.help === true) {
        io.stdout.write(commandHelp(c));
        code = EXIT.OK;
      } else code = c.run(args, io);
    }
  } catch (e) {
    io.stdout.flush();
    if (e instanceof UsageError) {
      io.stderr.write(`iommufd-sim: ${e.message}\n`);
      const c = name !== undefined ? COMMANDS[name] : undefined;
      io.stderr.write(c ? `Usage: iommufd-sim ${c.usage}  (iommufd-sim help ${c.name})\n` : 'Run `iommufd-sim help` for the commands.\n');
      code = EXIT.USAGE;
    } else {
      io.stderr.write(`iommufd-sim: internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      code = EXIT.INTERNAL;
    }
  }
  io.stdout.flush();
  io.stderr.flush();
  return code;
}

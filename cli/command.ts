/*
 * command.ts: the shape of a subcommand and the exit codes every command uses.
 */
import type { FlagSpec, Parsed } from './args.js';
import type { Io } from './io.js';

export const EXIT = {
  OK: 0,
  /** A divergence with --check (later: a fuzz failure). */
  FAIL: 1,
  /** A trace error (bad input, unreadable file) or a usage error. */
  USAGE: 2,
  /** The model threw: a bug of the model, not of the input. */
  INTERNAL: 3,
} as const;

export interface Command {
  readonly name: string;
  /** `replay [--check] [--json] [--quiet] FILE...` */
  readonly usage: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Paragraphs shown by `help COMMAND`. */
  readonly details: string;
  readonly flags: readonly FlagSpec[];
  run(args: Parsed, io: Io): number;
}

/** The worst of two exit codes: internal > usage/trace > fail > ok. */
export function worst(a: number, b: number): number {
  return Math.max(a, b);
}

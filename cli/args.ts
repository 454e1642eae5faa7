/*
 * args.ts: a small argv parser: boolean flags, flags with a value (`--seed 7` or
 * `--seed=7`), `--` ends the flags, a lone `-` is a positional (stdin). Unknown
 * flags are usage errors, never ignored.
 */
export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  /** Name of the value (`N`, `S`): the flag takes one. Absent: a boolean flag. */
  readonly value?: string;
  readonly doc: string;
}

export interface Parsed {
  readonly flags: Readonly<Record<string, string | true>>;
  readonly positional: readonly string[];
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  let rest = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (rest || a === '-' || !a.startsWith('-')) {
      positional.push(a);
      continue;
    }
    if (a === '--') {
      rest = true;
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      const s = specs.find((x) => x.short === a.slice(1));
      if (!s) throw new UsageError(`unknown option ${a}`);
      name = s.name;
    }
    const spec = specs.find((x) => x.name === name);
    if (!spec) throw new UsageError(`unknown option --${name}`);
    if (spec.value === undefined) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
    } else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value (${spec.value})`);
      flags[name] = v;
    }
  }
  return { flags, positional };
}

/** A non-negative integer flag value (decimal or 0x-hex). */
export function intFlag(p: Parsed, name: string, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = p.flags[name];
  if (v === undefined) return dflt;
  if (v === true || !/^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) throw new UsageError(`--${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n > max) throw new UsageError(`--${name}: ${v} is too large (at most ${max})`);
  return n;
}

export function strFlag(p: Parsed, name: string, dflt: string): string {
  const v = p.flags[name];
  return typeof v === 'string' ? v : dflt;
}

/*
 * outcome.ts: what an operation did, as the kernel would answer it, plus the reason
 * in words (the rule that produced an errno or fault and the objects involved).
 * Outcomes are values: core never throws for a user error.
 */
import type { Errno } from './errno.js';

export type OutScalar = bigint | number | string;
export type OutRecord = Readonly<Record<string, OutScalar>>;
export type OutValue = OutScalar | readonly OutRecord[];
export type Out = Readonly<Record<string, OutValue>>;

export type FaultKind = 'blocked' | 'not_present' | 'permission';

export type Outcome =
  | { readonly kind: 'ok'; readonly out: Out; readonly reason?: string }
  | { readonly kind: 'errno'; readonly errno: Errno; readonly reason: string; readonly out: Out }
  | { readonly kind: 'pending'; readonly reason: string }
  | { readonly kind: 'fault'; readonly fault: FaultKind; readonly reason: string };

const NO_OUT: Out = Object.freeze({});

const KINDS: ReadonlySet<unknown> = new Set(['ok', 'errno', 'pending', 'fault']);

/** Tells an Outcome from the other values handlers return on success (files, objects...). */
export function isOutcome(x: unknown): x is Outcome {
  return typeof x === 'object' && x !== null && KINDS.has((x as { kind?: unknown }).kind);
}

export function ok(out: Out = NO_OUT, reason?: string): Outcome {
  return reason === undefined ? { kind: 'ok', out } : { kind: 'ok', out, reason };
}
export function fail(errno: Errno, reason: string, out: Out = NO_OUT): Outcome {
  return { kind: 'errno', errno, reason, out };
}
export function fault(kind: FaultKind, reason: string): Outcome {
  return { kind: 'fault', fault: kind, reason };
}
export function pending(reason: string): Outcome {
  return { kind: 'pending', reason };
}

/** Prints an output value in trace syntax (u64 as hex). */
export function printOut(v: OutValue): unknown {
  if (typeof v === 'bigint') return v < 0x10000n && v >= 0n ? Number(v) : `0x${v.toString(16)}`;
  if (Array.isArray(v)) return v.map((r: OutRecord) => Object.fromEntries(Object.entries(r).map(([k, x]) => [k, printOut(x)])));
  return v;
}

/** One-line human form: `ok out_ioas_id=1`, `EBUSY: ...`, `fault not_present: ...`. */
export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok': {
      const parts = Object.entries(o.out).map(([k, v]) => `${k}=${JSON.stringify(printOut(v)).replace(/^"|"$/g, '')}`);
      return ['ok', ...parts].join(' ') + (o.reason ? ` (${o.reason})` : '');
    }
    case 'errno': {
      const parts = Object.entries(o.out).map(([k, v]) => `${k}=${JSON.stringify(printOut(v)).replace(/^"|"$/g, '')}`);
      return `${o.errno}: ${o.reason}` + (parts.length ? ` [${parts.join(' ')}]` : '');
    }
    case 'pending':
      return `pending: ${o.reason}`;
    case 'fault':
      return `fault ${o.fault}: ${o.reason}`;
  }
}

/*
 * codec.ts: trace format v1 in and out. Parsing turns one JSON line into a typed
 * Entry (or a TraceError naming line and field); resolving turns an Entry into an
 * Input by substituting bound variables; matching compares an Outcome with the
 * entry's `expect`, binding unbound variables. Printing gives the canonical line, and
 * parse(print(e)) equals e. Nothing here throws on bad input: errors are values.
 */
import { isErrno } from './errno.js';
import {
  fastParser, isVarRef, parseFieldValue, parseInteger, printFieldValue, shortPlainInteger, zeroOf, type FastParser, type FieldKind, type FieldValue, type VarRef,
} from './fields.js';
import { OPS, OP_ALIASES, OP_NAMES, ioctlNumber, type OpName, type OpSchema } from './ops.js';
import type { Entry, Expect, ExpectValue, Input, IoctlArgs, Raw, TraceHeader } from './entry.js';
import { printOut, type Outcome, type OutScalar, type OutValue } from './outcome.js';

/** Full ioctl number -> op name, for the ops that are ioctls. */
const NAMED_IOCTLS: ReadonlyMap<number, string> = new Map(
  Object.entries(OPS).flatMap(([n, sch]) => ('ioctl' in sch && sch.ioctl ? [[ioctlNumber(sch.ioctl), n] as [number, string]] : [])),
);

export const SUPPORTED_VERSIONS = [1] as const;
export const FAULT_KINDS = ['blocked', 'not_present', 'permission'] as const;

export interface TraceError {
  readonly traceError: true;
  readonly line: number;
  readonly field?: string;
  readonly message: string;
}
export function traceError(line: number, message: string, field?: string): TraceError {
  return field === undefined ? { traceError: true, line, message } : { traceError: true, line, field, message };
}
export function isTraceError(x: unknown): x is TraceError {
  return typeof x === 'object' && x !== null && (x as TraceError).traceError === true;
}

/** Is this raw line a comment or blank (skipped, but counted in line numbers)? */
export function isSkippable(text: string): boolean {
  const t = text.trimStart();
  return t === '' || t.startsWith('#');
}

/** The JSON object of a line, or why the line is not one (a message). */
function parseJson(text: string): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `malformed JSON: ${(e as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'a line must be a JSON object';
  return v as Record<string, unknown>;
}

export function parseHeaderLine(text: string, line: number): TraceHeader | TraceError {
  const o = parseJson(text);
  if (typeof o === 'string') return traceError(line, o);
  for (const k of Object.keys(o))
    if (!['trace', 'version', 'platform', 'meta'].includes(k)) return traceError(line, `unknown header field "${k}"`, k);
  if (o.trace !== 'iommufd') return traceError(line, 'the header must say "trace": "iommufd"', 'trace');
  if (!(SUPPORTED_VERSIONS as readonly unknown[]).includes(o.version))
    return traceError(line, `unsupported trace version ${JSON.stringify(o.version)} (supported: ${SUPPORTED_VERSIONS.join(', ')})`, 'version');
  const p = o.platform;
  if (typeof p !== 'string' && (typeof p !== 'object' || p === null || Array.isArray(p)))
    return traceError(line, 'platform must be a built-in name or an inline platform object', 'platform');
  return { trace: 'iommufd', version: 1, platform: p as TraceHeader['platform'], meta: o.meta ?? null, line };
}

function parseVar(v: unknown): VarRef | null {
  return typeof v === 'string' && v.startsWith('$') && v.length > 1 ? { var: v } : null;
}

const U32: FieldKind = { k: 'int', bits: 32, signed: false };

/** One field of an op, compiled once: its kind, its fast parser, its zero. */
interface Slot {
  readonly name: string;
  /** Position in the op's fields. */
  readonly index: number;
  /** 1 << index: the slot's bit in a `given` mask (ops have at most 31 fields). */
  readonly bit: number;
  readonly kind: FieldKind;
  readonly fast: FastParser;
  /** The zero of a scalar kind, shared; null when zeroOf must make a fresh array. */
  readonly zero: FieldValue | null;
}

/** An op's schema compiled for the codec (built once at load, looked up per entry). */
interface OpCodec {
  readonly name: OpName;
  readonly schema: OpSchema;
  /** The op's fields in schema order. */
  readonly slots: readonly Slot[];
  /** Field name to slot (a Map: only the op's own fields are found, and lookups stay fast). */
  readonly byName: ReadonlyMap<string, Slot>;
  readonly required: readonly string[];
  /** The key of the ioctl's size ('size' or 'argsz'); null for a non-ioctl op. */
  readonly sizeKey: 'size' | 'argsz' | null;
  /**
   * Builds an Input's `f` from values in slot order. It is an object literal compiled
   * per op: every Input of an op gets one shape, made in one step (adding the fields
   * one by one, or spreading a template and overwriting, costs ~5x more per entry).
   */
  readonly build: (values: readonly FieldValue[]) => Record<string, FieldValue>;
  /**
   * Reads an entry's fields into values in slot order (undefined where absent). Each
   * field is read at its own load site, compiled per op: a site sees the few shapes
   * of that op's fields objects and stays fast, where a load by a name that changes
   * (or a Map from names to slots) is a lookup per field.
   */
  readonly read: (fields: Readonly<Record<string, Raw>>, values: (Raw | FieldValue | undefined)[]) => void;
  /**
   * The values being resolved, in slot order. `read` writes every slot of it, so what
   * an earlier entry left there is never seen. Resolution is synchronous and not
   * reentrant, so one scratch array per op serves.
   */
  readonly scratch: (Raw | FieldValue | undefined)[];
  /** The `given` sets by bit mask of the slots given: Inputs share them (they are read-only). */
  readonly givenSets: Map<number, ReadonlySet<string>>;
}

/**
 * The literal-building function of a list of keys: values in key order in, one object
 * with those keys in that order out, made in one step and of one shape for every call.
 * Keys are quoted, so any string but "__proto__" is safe (no field or output has that name).
 */
export function literalBuilder<T>(names: readonly string[]): (values: readonly T[]) => Record<string, T> {
  const body = `return {${names.map((n, i) => `${JSON.stringify(n)}: v[${i}]`).join(', ')}};`;
  return new Function('v', body) as (values: readonly T[]) => Record<string, T>;
}

/** The reading function of a list of keys: `v[i] = o[names[i]]`, each at its own site (names quoted). */
function propertyReader<T>(names: readonly string[]): (o: Readonly<Record<string, T>>, v: (T | undefined)[]) => void {
  const body = names.map((n, i) => `v[${i}] = o[${JSON.stringify(n)}];`).join('\n');
  return new Function('o', 'v', body) as (o: Readonly<Record<string, T>>, v: (T | undefined)[]) => void;
}

function compileOp(name: OpName): OpCodec {
  const schema: OpSchema = OPS[name];
  // `read` looks fields up by name: such a name would be found on every entry.
  for (const k of Object.keys(schema.fields)) if (k in Object.prototype) throw new Error(`${name}: field "${k}" is an Object.prototype key`);
  const slots = Object.entries(schema.fields).map(([k, f], i): Slot => {
    const zero = zeroOf(f.kind);
    return { name: k, index: i, bit: 1 << i, kind: f.kind, fast: fastParser(f.kind), zero: typeof zero === 'object' ? null : zero };
  });
  return {
    name, schema, slots,
    byName: new Map(slots.map((s) => [s.name, s])),
    required: Object.entries(schema.fields).filter(([, f]) => f.required).map(([k]) => k),
    sizeKey: schema.ioctl ? (schema.ioctl.on === 'vfio-device' ? 'argsz' : 'size') : null,
    build: literalBuilder<FieldValue>(slots.map((s) => s.name)),
    read: propertyReader<Raw | FieldValue>(slots.map((s) => s.name)),
    scratch: slots.map((s) => s.zero ?? undefined),
    givenSets: new Map(),
  };
}

/** Every op name and RFC alias, to its compiled op. */
const CODECS: ReadonlyMap<string, OpCodec> = (() => {
  const m = new Map<string, OpCodec>();
  for (const name of OP_NAMES) m.set(name, compileOp(name));
  for (const [alias, name] of Object.entries(OP_ALIASES)) m.set(alias, m.get(name)!);
  return m;
})();
const FAST_U32 = fastParser(U32);

/**
 * A JSON value of a field: a VarRef for "$name", else the typed value. The fast path
 * allocates no result record; the general path (parseFieldValue) words the errors.
 */
function parseRaw(kind: FieldKind, fast: FastParser, v: unknown): Raw | BadValue {
  if (typeof v === 'string' && v.length > 1 && v.charCodeAt(0) === 36 /* $ */) return { var: v };
  const x = fast(v);
  if (x !== undefined) return x;
  const r = parseFieldValue(kind, v);
  return r.ok ? r.value : new BadValue(r.message);
}

/** Why a value could not be read (distinct from every Raw). */
class BadValue {
  constructor(readonly message: string) {}
}

/** The ioctl arguments of an entry that gives none: one shared, frozen object. */
export const NO_IOCTL_ARGS: IoctlArgs = Object.freeze({});

export function parseEntryLine(text: string, line: number): Entry | TraceError {
  const o = parseJson(text);
  if (typeof o === 'string') return traceError(line, o);
  return parseEntry(o, line);
}

export function parseEntry(o: Record<string, unknown>, line: number): Entry | TraceError {
  const written = o.op;
  if (typeof written !== 'string') return traceError(line, 'every entry needs "op" (a string)', 'op');
  const c = CODECS.get(written);
  if (!c) return traceError(line, `unknown op "${written}"`, 'op');
  const name = c.name;

  let pid: number | VarRef = 1;
  if (o.pid !== undefined) {
    const p = parseRaw(U32, FAST_U32, o.pid);
    if (p instanceof BadValue) return traceError(line, `pid: ${p.message}`, 'pid');
    pid = p as number | VarRef;
  }
  const fields: Record<string, Raw> = {};
  const ioctl: { size?: Raw; trailing?: Uint8Array; argpNull?: boolean } = {};
  for (const k in o) {
    if (k === 'op' || k === 'pid' || k === 'expect' || k === 'note') continue;
    const v = o[k];
    const slot = c.byName.get(k);
    if (slot) {
      const r = parseRaw(slot.kind, slot.fast, v);
      if (r instanceof BadValue) return traceError(line, `${k}: ${r.message}`, k);
      fields[k] = r;
    } else if (c.sizeKey !== null && k === c.sizeKey) {
      const r = parseRaw(U32, FAST_U32, v);
      if (r instanceof BadValue) return traceError(line, `${k}: ${r.message}`, k);
      ioctl.size = r;
    } else if (c.sizeKey !== null && k === 'trailing') {
      const r = parseFieldValue({ k: 'hex' }, v);
      if (!r.ok) return traceError(line, `trailing: ${r.message}`, k);
      ioctl.trailing = r.value as Uint8Array;
    } else if (c.sizeKey !== null && k === 'argp') {
      if (v !== null) return traceError(line, 'argp may only be null (a NULL argument pointer)', k);
      ioctl.argpNull = true;
    } else {
      return traceError(line, `unknown field "${k}" for ${name}`, k);
    }
  }
  for (const k of c.required) if (fields[k] === undefined) return traceError(line, `${name} needs "${k}"`, k);
  if (name === 'ioctl' && typeof fields.cmd === 'number') {
    // A number with a uAPI name must be written by name: its struct fields cannot be given through `arg`.
    const named = NAMED_IOCTLS.get(fields.cmd);
    if (named) return traceError(line, `ioctl 0x${fields.cmd.toString(16)} is ${named}: write the op by name`, 'cmd');
  }

  const entry: { -readonly [K in keyof Entry]: Entry[K] } = {
    line, op: name, opWritten: written, pid, fields, ioctl: ioctl.size === undefined && ioctl.trailing === undefined && ioctl.argpNull === undefined ? NO_IOCTL_ARGS : ioctl,
  };
  if (o.expect !== undefined) {
    const e = parseExpect(o.expect, c.schema, line);
    if (isTraceError(e)) return e;
    entry.expect = e;
  }
  if (o.note !== undefined) {
    if (typeof o.note !== 'string') return traceError(line, 'note must be a string', 'note');
    entry.note = o.note;
  }
  return entry;
}

function parseExpect(v: unknown, schema: OpSchema, line: number): Expect | TraceError {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return traceError(line, 'expect must be an object', 'expect');
  const o = v as Record<string, unknown>;
  if (o.ok !== undefined) {
    if (o.ok !== true) return traceError(line, 'expect.ok must be true', 'expect.ok');
    if (o.errno !== undefined) return traceError(line, 'expect has both ok and errno', 'expect');
    const out = parseOuts(o, schema, line);
    return isTraceError(out) ? out : { kind: 'ok', out };
  }
  if (o.errno !== undefined) {
    if (typeof o.errno !== 'string' || !isErrno(o.errno)) return traceError(line, `expect.errno: unknown errno ${JSON.stringify(o.errno)}`, 'expect.errno');
    const errno = o.errno;
    const out = parseOuts(o, schema, line);
    return isTraceError(out) ? out : { kind: 'errno', errno, out };
  }
  const keys = Object.keys(o);
  if (o.pending !== undefined) {
    if (o.pending !== true || keys.length !== 1) return traceError(line, 'expect.pending must be true and alone', 'expect.pending');
    return { kind: 'pending' };
  }
  if (o.fault !== undefined) {
    if (typeof o.fault !== 'string' || !(FAULT_KINDS as readonly string[]).includes(o.fault) || keys.length !== 1)
      return traceError(line, `expect.fault must be one of ${FAULT_KINDS.join(', ')}`, 'expect.fault');
    return { kind: 'fault', fault: o.fault };
  }
  return traceError(line, 'expect needs one of ok, errno, pending, fault', 'expect');
}

/** The outputs an ok or errno expect names (every key but ok and errno), variables as VarRefs. */
function parseOuts(o: Record<string, unknown>, schema: OpSchema, line: number): Record<string, ExpectValue> | TraceError {
  const out: Record<string, ExpectValue> = {};
  for (const k in o) {
    if (k === 'ok' || k === 'errno') continue;
    if (!schema.out.includes(k))
      return traceError(line, `expect: "${k}" is not an output of this op (outputs: ${schema.out.join(', ') || 'none'})`, `expect.${k}`);
    const x = o[k];
    out[k] = parseVar(x) ?? x;
  }
  return out;
}

/** Variable bindings made by `expect` outcomes during a replay. */
export type Bindings = Map<string, OutValue>;

/** The value a variable gives a field, or why it cannot (a BadValue: no result record on the common path). */
function resolveValue(slot: Pick<Slot, 'kind' | 'fast'>, raw: VarRef, vars: Bindings): FieldValue | BadValue {
  const b = vars.get(raw.var);
  if (b === undefined) return new BadValue(`variable ${raw.var} is not bound (bind it in an earlier expect)`);
  if (Array.isArray(b)) return new BadValue(`variable ${raw.var} holds an array`);
  const v = typeof b === 'bigint' ? `0x${b.toString(16)}` : b;
  const x = slot.fast(v);
  if (x !== undefined) return x;
  const r = parseFieldValue(slot.kind, v);
  return r.ok ? r.value : new BadValue(`${raw.var}: ${r.message}`);
}

const U32_SLOT = { kind: U32, fast: FAST_U32 };

/** The set of the slots in `mask` (bit i: slot i), made once per op and mask. */
function givenSet(c: OpCodec, mask: number): ReadonlySet<string> {
  let g = c.givenSets.get(mask);
  if (g === undefined) {
    g = new Set(c.slots.filter((s) => (mask & s.bit) !== 0).map((s) => s.name));
    c.givenSets.set(mask, g);
  }
  return g;
}

/** Substitutes variables and fills absent fields with zero. */
export function resolveEntry(e: Entry, vars: Bindings): Input | TraceError {
  const c = CODECS.get(e.op)!;
  const v = c.scratch;
  c.read(e.fields, v);
  let mask = 0;
  // In schema order, so the first bad field met is the one an error names.
  for (const slot of c.slots) {
    const raw = v[slot.index];
    if (raw === undefined) {
      // A fresh array zero for each Input, so that no two share one.
      v[slot.index] = slot.zero ?? zeroOf(slot.kind);
      continue;
    }
    mask |= slot.bit;
    if (isVarRef(raw)) {
      const x = resolveValue(slot, raw, vars);
      if (x instanceof BadValue) return traceError(e.line, x.message, slot.name);
      v[slot.index] = x;
    }
  }
  const f = c.build(v as FieldValue[]);
  let pid = 1;
  if (isVarRef(e.pid)) {
    const x = resolveValue(U32_SLOT, e.pid, vars);
    if (x instanceof BadValue) return traceError(e.line, x.message, 'pid');
    pid = x as number;
  } else pid = e.pid;
  const ioctl = c.schema.ioctl;
  let size = ioctl ? ioctl.size : 0;
  if (e.ioctl.size !== undefined) {
    const x = isVarRef(e.ioctl.size) ? resolveValue(U32_SLOT, e.ioctl.size, vars) : e.ioctl.size;
    if (x instanceof BadValue) return traceError(e.line, x.message, c.sizeKey ?? 'size');
    size = x as number;
  }
  const trailing = e.ioctl.trailing ?? null;
  if (trailing && e.ioctl.size === undefined) size += trailing.length;
  return { op: e.op, pid, f, given: givenSet(c, mask), size, trailing, argpNull: e.ioctl.argpNull === true } as unknown as Input;
}

/** An integer outcome equals a JSON number or short plain string without going through bigint parsing. */
function sameSmallInteger(expected: unknown, actual: number | bigint): boolean | undefined {
  // A non-integer number actual takes the general path (which rejects it as parseInteger would).
  if (typeof actual === 'number' && !Number.isInteger(actual)) return undefined;
  const x = typeof expected === 'string' ? shortPlainInteger(expected) : typeof expected === 'number' && Number.isSafeInteger(expected) ? expected : undefined;
  // Exact: x is below 2^53, and an actual beyond 2^53 converts to at least 2^53.
  return x === undefined ? undefined : Number(actual) === x;
}

function sameValue(expected: unknown, actual: OutValue): boolean {
  if (typeof actual === 'bigint' || typeof actual === 'number') {
    const fast = sameSmallInteger(expected, actual);
    if (fast !== undefined) return fast;
    const n = parseInteger(expected);
    return typeof n !== 'string' && n === BigInt(actual);
  }
  if (typeof actual === 'string') return expected === actual;
  if (!Array.isArray(expected) || expected.length !== actual.length) return false;
  return actual.every((rec, i) => {
    const ex = expected[i] as Record<string, unknown> | undefined;
    if (typeof ex !== 'object' || ex === null) return false;
    return Object.entries(rec).every(([k, x]) => ex[k] === undefined || sameValue(ex[k], x as OutScalar))
      && Object.keys(ex).every((k) => k in rec);
  });
}

export interface Match {
  readonly diverged: boolean;
  /** What differed, in words (empty when it matched). */
  readonly detail: string;
}

const MATCHED: Match = Object.freeze({ diverged: false, detail: '' });

/** Compares an outcome with an expect, binding unbound variables into `vars`. */
export function matchExpect(expect: Expect, outcome: Outcome, vars: Bindings): Match {
  if (expect.kind !== outcome.kind) return { diverged: true, detail: `expected ${expect.kind}, got ${outcome.kind}` };
  if (expect.kind === 'errno' && outcome.kind === 'errno' && expect.errno !== outcome.errno)
    return { diverged: true, detail: `expected ${expect.errno}, got ${outcome.errno}` };
  if (expect.kind === 'fault' && outcome.kind === 'fault' && expect.fault !== outcome.fault)
    return { diverged: true, detail: `expected fault ${expect.fault}, got ${outcome.fault}` };
  if ((expect.kind === 'ok' || expect.kind === 'errno') && (outcome.kind === 'ok' || outcome.kind === 'errno')) {
    // Bindings are made only when the whole expect matched; most expects bind nothing.
    let newly: [string, OutValue][] | null = null;
    const out = expect.out;
    for (const k in out) {
      const ev = out[k];
      const actual = outcome.out[k];
      if (actual === undefined) return { diverged: true, detail: `output ${k} was not produced` };
      if (isVarRef(ev)) {
        const bound = vars.get(ev.var) ?? newly?.find(([n]) => n === ev.var)?.[1];
        if (bound === undefined) (newly ??= []).push([ev.var, actual]);
        else if (!sameValue(printOut(bound), actual))
          return { diverged: true, detail: `${k}: ${ev.var} is ${JSON.stringify(printOut(bound))}, got ${JSON.stringify(printOut(actual))}` };
      } else if (!sameValue(ev, actual)) {
        return { diverged: true, detail: `${k}: expected ${JSON.stringify(ev)}, got ${JSON.stringify(printOut(actual))}` };
      }
    }
    if (newly !== null) for (const [n, v] of newly) vars.set(n, v);
  }
  return MATCHED;
}

/** The expect that records an outcome exactly (for generated traces and fixtures). */
export function expectOf(o: Outcome, keep?: readonly string[]): Record<string, unknown> {
  switch (o.kind) {
    case 'ok':
    case 'errno': {
      const base: Record<string, unknown> = o.kind === 'ok' ? { ok: true } : { errno: o.errno };
      for (const [k, v] of Object.entries(o.out)) if (!keep || keep.includes(k)) base[k] = printOut(v);
      return base;
    }
    case 'pending':
      return { pending: true };
    case 'fault':
      return { fault: o.fault };
  }
}

function printRaw(kind: FieldKind, v: Raw): unknown {
  return isVarRef(v) ? v.var : printFieldValue(kind, v);
}

export function printHeader(h: Omit<TraceHeader, 'line'>): string {
  return JSON.stringify({ trace: h.trace, version: h.version, platform: h.platform, ...(h.meta !== null && h.meta !== undefined ? { meta: h.meta } : {}) });
}

/** The canonical line of an entry: op, pid (when not 1), fields in schema order, ioctl args, expect, note. */
export function printEntry(e: Entry): string {
  const schema: OpSchema = OPS[e.op];
  const o: Record<string, unknown> = { op: e.opWritten };
  if (isVarRef(e.pid) || e.pid !== 1) o.pid = isVarRef(e.pid) ? e.pid.var : e.pid;
  for (const [k, f] of Object.entries(schema.fields)) {
    const v = e.fields[k];
    if (v !== undefined) o[k] = printRaw(f.kind, v);
  }
  if (e.ioctl.size !== undefined) o[schema.ioctl?.on === 'vfio-device' ? 'argsz' : 'size'] = printRaw({ k: 'int', bits: 32, signed: false }, e.ioctl.size);
  if (e.ioctl.trailing) o.trailing = printFieldValue({ k: 'hex' }, e.ioctl.trailing);
  if (e.ioctl.argpNull) o.argp = null;
  if (e.expect) o.expect = printExpect(e.expect);
  if (e.note !== undefined) o.note = e.note;
  return JSON.stringify(o);
}

/** An expect in trace syntax, variables as written. */
export function printExpect(x: Expect): unknown {
  const outs = (out: Readonly<Record<string, ExpectValue>>) =>
    Object.fromEntries(Object.entries(out).map(([k, v]) => [k, isVarRef(v) ? v.var : v]));
  switch (x.kind) {
    case 'ok':
      return { ok: true, ...outs(x.out) };
    case 'errno':
      return { errno: x.errno, ...outs(x.out) };
    case 'pending':
      return { pending: true };
    case 'fault':
      return { fault: x.fault };
  }
}

export type { OpName };

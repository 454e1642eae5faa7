/*
 * fields.ts: the kinds of field an entry can carry, and how a JSON value becomes a
 * typed value of that kind. Every u64 is a bigint from the first moment it is read,
 * so no value is ever rounded; smaller integers are JS numbers.
 *
 * A field given as "$name" is a variable reference, kept as a VarRef until replay
 * resolves it against the bindings made by earlier `expect` outcomes.
 */

export const U64_MAX = (1n << 64n) - 1n;

export type FieldKind =
  | { readonly k: 'int'; readonly bits: 8 | 16 | 32 | 64; readonly signed: boolean }
  | { readonly k: 'flags'; readonly bits: 32 | 64; readonly names: Readonly<Record<string, number>> }
  | { readonly k: 'enum'; readonly bits: 16 | 32; readonly names: Readonly<Record<string, number>> }
  | { readonly k: 'str'; readonly values?: readonly string[] }
  | { readonly k: 'strlist'; readonly values?: readonly string[] }
  | { readonly k: 'ranges' }
  | { readonly k: 'hex' };

/** A field descriptor; `T` is the TypeScript type of its resolved value. */
export interface Field<T> {
  readonly kind: FieldKind;
  /** Required fields have no default (the op names its subject: dev, path...). */
  readonly required?: boolean;
  /** Phantom marker for type derivation; never set. */
  readonly __t?: T;
}

export interface IovaRange {
  readonly start: bigint;
  readonly last: bigint;
}

const int = <T>(bits: 8 | 16 | 32 | 64, signed: boolean): Field<T> => ({ kind: { k: 'int', bits, signed } });
export const u16: Field<number> = int(16, false);
export const u32: Field<number> = int(32, false);
export const s32: Field<number> = int(32, true);
export const u64: Field<bigint> = int(64, false);
export const str: Field<string> = { kind: { k: 'str' } };
export const hex: Field<Uint8Array> = { kind: { k: 'hex' } };
export const ranges: Field<readonly IovaRange[]> = { kind: { k: 'ranges' } };

export function req<T>(f: Field<T>): Field<T> {
  return { ...f, required: true };
}
export function flags32(names: Record<string, number>): Field<number> {
  return { kind: { k: 'flags', bits: 32, names } };
}
export function enum32(names: Record<string, number>): Field<number> {
  return { kind: { k: 'enum', bits: 32, names } };
}
export function enum16(names: Record<string, number>): Field<number> {
  return { kind: { k: 'enum', bits: 16, names } };
}
export function oneOf(values: readonly string[]): Field<string> {
  return { kind: { k: 'str', values } };
}
export function strlist(values?: readonly string[]): Field<readonly string[]> {
  return values ? { kind: { k: 'strlist', values } } : { kind: { k: 'strlist' } };
}

/** A reference to a trace variable; resolved at replay. */
export interface VarRef {
  readonly var: string;
}
export function isVarRef(v: unknown): v is VarRef {
  return typeof v === 'object' && v !== null && typeof (v as VarRef).var === 'string';
}

export type FieldValue = number | bigint | string | readonly string[] | readonly IovaRange[] | Uint8Array;

/** Parses a JSON integer: a safe JSON number, or a decimal or 0x-hex string. */
export function parseInteger(v: unknown): bigint | string {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return `${v} is not an integer`;
    if (!Number.isSafeInteger(v)) return `${v} is above 2^53-1; write it as a string ("0x...") to keep it exact`;
    return BigInt(v);
  }
  if (typeof v === 'string') {
    const s = v.trim();
    if (/^-?0x[0-9a-f]+$/i.test(s)) return s.startsWith('-') ? -BigInt(s.slice(1)) : BigInt(s);
    if (/^-?[0-9]+$/.test(s)) return BigInt(s);
    return `"${v}" is not an integer (decimal or 0x-hex)`;
  }
  return `${JSON.stringify(v)} is not an integer`;
}

function fitInt(n: bigint, bits: number, signed: boolean): string | null {
  const lo = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const hi = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  if (n < lo || n > hi) return `${n} does not fit in ${signed ? 's' : 'u'}${bits}`;
  return null;
}

/** Converts a JSON value (not a variable) to the field's value, or returns an error message. */
export function parseFieldValue(kind: FieldKind, v: unknown): { ok: true; value: FieldValue } | { ok: false; message: string } {
  switch (kind.k) {
    case 'int': {
      const n = parseInteger(v);
      if (typeof n === 'string') return { ok: false, message: n };
      const e = fitInt(n, kind.bits, kind.signed);
      if (e) return { ok: false, message: e };
      return { ok: true, value: kind.bits === 64 ? n : Number(n) };
    }
    case 'flags': {
      if (Array.isArray(v)) {
        let acc = 0;
        for (const name of v) {
          if (typeof name !== 'string') return { ok: false, message: `flag ${JSON.stringify(name)} is not a name` };
          const bit = kind.names[name];
          if (bit === undefined)
            return { ok: false, message: `unknown flag "${name}" (known: ${Object.keys(kind.names).join(', ') || 'none'})` };
          acc = (acc | bit) >>> 0;
        }
        return { ok: true, value: acc };
      }
      const n = parseInteger(v);
      if (typeof n === 'string') return { ok: false, message: `flags must be an array of names or an integer: ${n}` };
      const e = fitInt(n, kind.bits, false);
      if (e) return { ok: false, message: e };
      return { ok: true, value: Number(n) };
    }
    case 'enum': {
      if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(kind.names, v)) {
        return { ok: true, value: kind.names[v] as number };
      }
      const n = parseInteger(v);
      if (typeof n === 'string')
        return { ok: false, message: `unknown name ${JSON.stringify(v)} (known: ${Object.keys(kind.names).join(', ')})` };
      const e = fitInt(n, kind.bits, false);
      if (e) return { ok: false, message: e };
      return { ok: true, value: Number(n) };
    }
    case 'str':
      if (typeof v !== 'string') return { ok: false, message: `${JSON.stringify(v)} is not a string` };
      if (kind.values && !kind.values.includes(v))
        return { ok: false, message: `"${v}" is not one of ${kind.values.join(', ')}` };
      return { ok: true, value: v };
    case 'strlist': {
      const arr = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(arr) || arr.some((x) => typeof x !== 'string'))
        return { ok: false, message: `${JSON.stringify(v)} is not an array of names` };
      for (const x of arr as string[])
        if (kind.values && !kind.values.includes(x))
          return { ok: false, message: `unknown name "${x}" (known: ${kind.values.join(', ')})` };
      return { ok: true, value: arr as string[] };
    }
    case 'ranges': {
      if (!Array.isArray(v)) return { ok: false, message: 'must be an array of {"start", "last"}' };
      const out: IovaRange[] = [];
      for (const [i, r] of v.entries()) {
        if (typeof r !== 'object' || r === null || Array.isArray(r))
          return { ok: false, message: `element ${i} must be {"start", "last"}` };
        const keys = Object.keys(r);
        const bad = keys.find((k) => k !== 'start' && k !== 'last');
        if (bad) return { ok: false, message: `element ${i} has unknown field "${bad}"` };
        const s = parseInteger((r as Record<string, unknown>).start ?? 0);
        const l = parseInteger((r as Record<string, unknown>).last ?? 0);
        if (typeof s === 'string') return { ok: false, message: `element ${i} start: ${s}` };
        if (typeof l === 'string') return { ok: false, message: `element ${i} last: ${l}` };
        const e = fitInt(s, 64, false) ?? fitInt(l, 64, false);
        if (e) return { ok: false, message: `element ${i}: ${e}` };
        out.push({ start: s, last: l });
      }
      return { ok: true, value: out };
    }
    case 'hex': {
      if (typeof v !== 'string' || !/^0x([0-9a-f]{2})*$/i.test(v))
        return { ok: false, message: 'must be a hex string of whole bytes, e.g. "0x0001"' };
      const bytes = new Uint8Array((v.length - 2) / 2);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(v.slice(2 + 2 * i, 4 + 2 * i), 16);
      return { ok: true, value: bytes };
    }
  }
}

/** The zero value of a kind (absent uAPI fields are zero, as in a zeroed C struct). */
export function zeroOf(kind: FieldKind): FieldValue {
  switch (kind.k) {
    case 'int':
      return kind.bits === 64 ? 0n : 0;
    case 'flags':
    case 'enum':
      return 0;
    case 'str':
      return '';
    case 'strlist':
      return [];
    case 'ranges':
      return [];
    case 'hex':
      return new Uint8Array(0);
  }
}

/** Prints a value back to its canonical JSON form (u64 as hex strings, names for flags). */
export function printFieldValue(kind: FieldKind, v: FieldValue): unknown {
  switch (kind.k) {
    case 'int':
      if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n && v < 0x10000n ? Number(v) : `0x${v.toString(16)}`;
      return v;
    case 'flags': {
      const n = v as number;
      const names: string[] = [];
      let rest = n;
      for (const [name, bit] of Object.entries(kind.names)) {
        if (bit !== 0 && (rest & bit) === bit) {
          names.push(name);
          rest = (rest & ~bit) >>> 0;
        }
      }
      return rest === 0 ? names : `0x${n.toString(16)}`;
    }
    case 'enum': {
      const hit = Object.entries(kind.names).find(([, val]) => val === v);
      return hit ? hit[0] : v;
    }
    case 'str':
    case 'strlist':
      return v;
    case 'ranges':
      return (v as readonly IovaRange[]).map((r) => ({ start: `0x${r.start.toString(16)}`, last: `0x${r.last.toString(16)}` }));
    case 'hex':
      return '0x' + Array.from(v as Uint8Array, (b) => b.toString(16).padStart(2, '0')).join('');
  }
}

/**
 * The fast path of parseFieldValue: a parser compiled once per field kind that
 * handles the common values (in-range JSON numbers, short plain decimal or 0x-hex
 * strings, flag names, enum names, strings) and returns exactly what
 * parseFieldValue would return for them. It returns undefined for anything else
 * (whitespace, signs, long digit strings, errors, the rarer kinds), and the caller
 * then takes the general path, which also words every error message.
 */
export type FastParser = (v: unknown) => FieldValue | undefined;

/** 16 for a plain "0x"-hex string, 10 for a plain decimal one, 0 otherwise (no sign, no spaces). */
function plainDigits(s: string): 0 | 10 | 16 {
  const n = s.length;
  if (n > 2 && s.charCodeAt(0) === 48 && (s.charCodeAt(1) | 0x20) === 120) {
    for (let i = 2; i < n; i++) {
      const c = s.charCodeAt(i);
      if (!((c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102))) return 0;
    }
    return 16;
  }
  if (n === 0) return 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return 0;
  }
  return 10;
}

/**
 * The value of a plain decimal or "0x"-hex string of at most 15 characters (exact as a
 * double, and what parseInteger reads it as); undefined for any other string.
 */
export function shortPlainInteger(s: string): number | undefined {
  // One pass that checks and sums the digits: it runs for every integer output matched,
  // and Number(s) on a "0x" string is a call into the runtime. Every partial sum is
  // below 2^53, so each step is exact and the result is Number(s).
  const n = s.length;
  if (n === 0 || n > 15) return undefined;
  let x = 0;
  if (n > 2 && s.charCodeAt(0) === 48 && (s.charCodeAt(1) | 0x20) === 120) {
    for (let i = 2; i < n; i++) {
      const c = s.charCodeAt(i);
      const l = c | 0x20;
      if (c >= 48 && c <= 57) x = x * 16 + (c - 48);
      else if (l >= 97 && l <= 102) x = x * 16 + (l - 87);
      else return undefined;
    }
    return x;
  }
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    x = x * 10 + (c - 48);
  }
  return x;
}

/** A fast integer reader for an unsigned field of `bits` (number result) or u64 (bigint result). */
function fastUnsigned(bits: 8 | 16 | 32 | 64): FastParser {
  if (bits === 64)
    return (v) => {
      // A safe number, or at most 16 hex / 19 decimal digits: always within u64.
      if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
      if (typeof v !== 'string') return undefined;
      const d = plainDigits(v);
      return (d === 16 && v.length <= 18) || (d === 10 && v.length <= 19) ? BigInt(v) : undefined;
    };
  const hi = 2 ** bits - 1;
  return (v) => {
    let n: number;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) return undefined;
      n = v + 0; // -0 becomes 0, as through BigInt
    } else if (typeof v === 'string') {
      const x = shortPlainInteger(v);
      if (x === undefined) return undefined;
      n = x;
    } else return undefined;
    return n >= 0 && n <= hi ? n : undefined;
  };
}

export function fastParser(kind: FieldKind): FastParser {
  switch (kind.k) {
    case 'int': {
      if (!kind.signed) return fastUnsigned(kind.bits);
      if (kind.bits === 64) return () => undefined;
      const lo = -(2 ** (kind.bits - 1));
      const hi = 2 ** (kind.bits - 1) - 1;
      const unsigned = fastUnsigned(kind.bits); // plain strings are non-negative
      return (v) => {
        if (typeof v === 'number') return Number.isSafeInteger(v) && v >= lo && v <= hi ? v + 0 : undefined;
        const n = unsigned(v) as number | undefined;
        return n !== undefined && n <= hi ? n : undefined;
      };
    }
    case 'flags': {
      if (kind.bits !== 32) return () => undefined;
      const names = kind.names;
      const raw = fastUnsigned(32);
      return (v) => {
        if (!Array.isArray(v)) return raw(v);
        let acc = 0;
        for (let i = 0; i < v.length; i++) {
          const name: unknown = v[i];
          if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(names, name)) return undefined;
          acc = (acc | (names[name] as number)) >>> 0;
        }
        return acc;
      };
    }
    case 'enum': {
      const names = new Map(Object.entries(kind.names));
      const raw = fastUnsigned(kind.bits);
      return (v) => (typeof v === 'string' && names.has(v) ? names.get(v) : raw(v));
    }
    case 'str': {
      const values = kind.values ? new Set(kind.values) : null;
      return (v) => (typeof v === 'string' && (values === null || values.has(v)) ? v : undefined);
    }
    case 'strlist':
    case 'ranges':
    case 'hex':
      return () => undefined;
  }
}

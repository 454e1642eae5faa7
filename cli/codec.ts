/*
 * codec.ts: the CLI's door to the events/ codec. It adds a workaround for a bug of
 * events/codec.ts (reported to its owner): `parseRaw` returns a string both for an
 * error message and for a valid value of a string-kind field (`dev`, `path`,
 * `driver`, `dir`), so parseEntry refuses every entry that gives one ("path:
 * /dev/iommu"); and resolveEntry refuses a variable used in a string field the same
 * way. Here string-kind fields are parsed by us: the codec sees a placeholder
 * variable in their place, and we put the real value back. Once the codec is fixed
 * this stays correct (it then simply never sees those fields), and can be deleted.
 */
import {
  OPS, OP_ALIASES, isOpName, isTraceError, isVarRef, parseEntry, resolveEntry as codecResolve, traceError,
  type Bindings, type Entry, type Input, type OpName, type Raw, type TraceError,
} from '../events/index.js';
import { parseFieldValue, type FieldKind } from '../events/fields.js';

const PLACEHOLDER = '$__cli_str__';

/** For each op, the names of its string-kind fields (the ones the codec mis-parses). */
const STR_FIELDS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  Object.entries(OPS).map(([name, schema]) => [
    name,
    Object.entries(schema.fields as Readonly<Record<string, { kind: FieldKind }>>).filter(([, f]) => f.kind.k === 'str').map(([k]) => k),
  ]),
);

function opNameOf(o: Record<string, unknown>): OpName | undefined {
  const w = o.op;
  if (typeof w !== 'string') return undefined;
  return isOpName(w) ? w : OP_ALIASES[w];
}

/** parseEntry, with string-kind fields parsed correctly. */
export function parseEntryObject(o: Record<string, unknown>, line: number): Entry | TraceError {
  const name = opNameOf(o);
  const strs = name === undefined ? undefined : STR_FIELDS[name];
  if (strs === undefined || strs.length === 0 || !strs.some((k) => o[k] !== undefined)) return parseEntry(o, line);
  const masked: Record<string, unknown> = { ...o };
  const fixed: Record<string, Raw> = {};
  const fields = OPS[name!].fields as Readonly<Record<string, { kind: FieldKind }>>;
  for (const k of strs) {
    const v = o[k];
    if (v === undefined) continue;
    masked[k] = PLACEHOLDER;
    if (typeof v === 'string' && v.startsWith('$') && v.length > 1) {
      fixed[k] = { var: v };
      continue;
    }
    const r = parseFieldValue(fields[k]!.kind, v);
    if (!r.ok) return traceError(line, `${k}: ${r.message}`, k);
    fixed[k] = r.value;
  }
  const e = parseEntry(masked, line);
  if (isTraceError(e)) return e;
  return { ...e, fields: { ...e.fields, ...fixed } };
}

/** parseEntryLine: one JSON line to an Entry or a TraceError. */
export function parseEntryLine(text: string, line: number): Entry | TraceError {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return traceError(line, `malformed JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return traceError(line, 'a line must be a JSON object');
  return parseEntryObject(v as Record<string, unknown>, line);
}

/** resolveEntry, with variables in string-kind fields substituted correctly. */
export function resolveEntry(e: Entry, vars: Bindings): Input | TraceError {
  const strs = STR_FIELDS[e.op];
  if (strs === undefined || strs.length === 0) return codecResolve(e, vars);
  let fields: Record<string, Raw> | undefined;
  for (const k of strs) {
    const raw = e.fields[k];
    if (!isVarRef(raw)) continue;
    const b = vars.get(raw.var);
    if (b === undefined) return traceError(e.line, `variable ${raw.var} is not bound (bind it in an earlier expect)`, k);
    if (typeof b !== 'string') return traceError(e.line, `${k}: variable ${raw.var} holds ${typeof b === 'bigint' ? 'a number' : 'an array'}, not a string`, k);
    const fk = (OPS[e.op].fields as Readonly<Record<string, { kind: FieldKind }>>)[k]!.kind;
    const r = parseFieldValue(fk, b);
    if (!r.ok) return traceError(e.line, `${k}: ${raw.var}: ${r.message}`, k);
    fields ??= { ...e.fields };
    fields[k] = r.value;
  }
  return codecResolve(fields === undefined ? e : { ...e, fields }, vars);
}

/*
 * format.ts: the human forms of a replay: one timeline line per entry, the
 * divergence line, the per-file summary, and trace-error messages. Colours only
 * when asked (the caller decides: stdout is a TTY and NO_COLOR is unset).
 */
import { OPS, describeOutcome, isVarRef, type Outcome } from '../events/index.js';
import { printFieldValue, type FieldKind } from '../events/fields.js';
import type { Divergence, EntryEvent, FileReport, ReplayError } from './replay.js';

export interface Style {
  dim(s: string): string;
  bold(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
export const COLOR: Style = {
  dim: wrap(2, 22), bold: wrap(1, 22), green: wrap(32, 39), yellow: wrap(33, 39), red: wrap(31, 39), cyan: wrap(36, 39), magenta: wrap(35, 39),
};
const id = (s: string) => s;
export const PLAIN: Style = { dim: id, bold: id, green: id, yellow: id, red: id, cyan: id, magenta: id };

/** A printed field value, compact: strings bare, lists joined with '|'. */
function show(kind: FieldKind, v: unknown): string {
  if (typeof v === 'bigint') return v >= 0x1000n ? `0x${v.toString(16)}` : v.toString(); // addresses read best in hex
  const p = printFieldValue(kind, v as never);
  if (typeof p === 'string') return p;
  if (Array.isArray(p)) {
    if (p.every((x) => typeof x === 'string')) return p.length ? p.join('|') : '0';
    return JSON.stringify(p);
  }
  return JSON.stringify(p);
}

/** `op key=value ...` for the fields the entry gave (variables as `$name=value`). */
export function describeInput(ev: Pick<EntryEvent, 'entry' | 'input'>): string {
  const { entry, input } = ev;
  const fields = OPS[entry.op].fields as Readonly<Record<string, { kind: FieldKind }>>;
  const parts: string[] = [entry.opWritten];
  const f = input.f as Readonly<Record<string, unknown>>;
  for (const k in entry.fields) {
    const raw = entry.fields[k];
    const kind = fields[k]?.kind;
    if (kind === undefined) continue;
    const value = show(kind, f[k]);
    parts.push(isVarRef(raw) ? `${k}=${raw.var}=${value}` : `${k}=${value}`);
  }
  if (entry.ioctl.size !== undefined) {
    const on = (OPS[entry.op] as { readonly ioctl?: { readonly on: string } }).ioctl?.on;
    parts.push(`${on === 'vfio-device' ? 'argsz' : 'size'}=${input.size}`);
  }
  if (entry.ioctl.trailing) parts.push(`trailing=${entry.ioctl.trailing.length}B`);
  if (entry.ioctl.argpNull) parts.push('argp=NULL');
  return parts.join(' ');
}

export function styleOutcome(o: Outcome, s: Style): string {
  const text = describeOutcome(o);
  switch (o.kind) {
    case 'ok':
      return s.green(text);
    case 'errno':
      return s.yellow(text);
    case 'fault':
      return s.red(text);
    case 'pending':
      return s.cyan(text);
  }
}

const LINE_WIDTH = 6;

/** ` [fd as $ifd]`: the outputs the entry's expect names as variables. */
function bindsOf(ev: EntryEvent, s: Style): string {
  const ex = ev.entry.expect;
  if (!ex || (ex.kind !== 'ok' && ex.kind !== 'errno')) return '';
  const parts: string[] = [];
  for (const k in ex.out) {
    const v = ex.out[k];
    if (isVarRef(v)) parts.push(`${k} as ${v.var}`);
  }
  return parts.length ? s.dim(` [${parts.join(', ')}]`) : '';
}

/** One timeline line: `    12  [pid 7] VFIO_DEVICE_BIND_IOMMUFD fd=$dfd1=4 iommufd=$ifd1=3 -> ok out_devid=1`. */
export function timelineLine(ev: EntryEvent, s: Style): string {
  const pid = ev.input.pid !== 1 ? s.magenta(`[pid ${ev.input.pid}] `) : '';
  const note = ev.entry.note !== undefined ? s.dim(`  # ${ev.entry.note}`) : '';
  return `${s.dim(String(ev.entry.line).padStart(LINE_WIDTH))}  ${pid}${describeInput(ev)} ${s.dim('->')} ${styleOutcome(ev.outcome, s)}${bindsOf(ev, s)}${note}`;
}

export function divergenceLine(d: Divergence, s: Style, withLine: boolean): string {
  const at = withLine ? `line ${d.line} ${d.op}: ` : '';
  const { reason, ...got } = d.actual;
  const why = typeof reason === 'string' ? ` (${reason})` : '';
  return `${' '.repeat(LINE_WIDTH)}  ${s.red(s.bold('DIVERGENCE'))} ${at}expected ${JSON.stringify(d.expected)} got ${JSON.stringify(got)}${why}: ${d.detail}`;
}

/** `FILE:LINE: field: message` (the field is omitted when the message already starts with it). */
export function errorMessage(file: string, e: ReplayError): string {
  if (e.kind === 'internal') return `internal error at ${file}:${e.line}: ${e.message} (this is a bug of the model, not of the trace)`;
  if (e.kind === 'io') return `${file}: ${e.message}`;
  const field = e.field !== undefined && !e.message.startsWith(`${e.field}:`) ? `${e.field}: ` : '';
  return `${file}:${e.line}: ${field}${e.message}`;
}

/** The message of an error for --json (the FILE: prefix and line live in their own keys). */
export function errorText(e: ReplayError): string {
  if (e.kind === 'internal') return `internal error: ${e.message}`;
  const field = e.field !== undefined && !e.message.startsWith(`${e.field}:`) ? `${e.field}: ` : '';
  return `${field}${e.message}`;
}

export function summaryLine(r: FileReport, s: Style): string {
  const c = r.counts;
  const div = r.divergences.length;
  const parts = [
    `${r.entries} ${r.entries === 1 ? 'entry' : 'entries'}`,
    `${s.green(`${c.ok} ok`)}, ${s.yellow(`${c.errno} errno`)}, ${s.red(`${c.fault} fault`)}, ${s.cyan(`${c.pending} pending`)}`,
    div === 0 ? s.green('0 divergences') : s.red(s.bold(`${div} divergence${div === 1 ? '' : 's'}`)),
    `state ${r.stateHash ?? '-'}`,
  ];
  const status = r.error ? s.red(r.error.kind === 'internal' ? 'INTERNAL ERROR' : 'STOPPED') : div ? s.red('DIVERGED') : s.green('OK');
  return `${s.bold(r.file)}: ${status}: ${parts.join('; ')}`;
}

/*
 * pack.ts: trace items (header text, parsed Entry, trace error, failure, end) as a
 * stream of numbers, u64s and strings, so that the parsing worker can hand them to
 * the replaying thread in transferable buffers. Structured clone of Entry objects
 * costs the receiver ~2.4 µs per entry, twice parseEntryLine itself; reading this
 * layout back costs a fraction of that (docs/decisions.md, "Parallel replay").
 *
 * Invariant: unpack(pack(x)) is x exactly, down to the order of keys (the order a
 * line wrote its fields in shows in the timeline). Fields are laid out by the op's
 * schema (the kind of each field says how its value is written); strings that recur
 * (names, variables, errnos) are interned across batches, the rest travel per batch.
 * What entries share (op, the keys in their order, the expect's form: the entry's
 * shape) travels once and is then named by number, so that the reader builds each
 * object in one step, of one hidden class per shape, instead of key by key.
 */
import {
  NO_IOCTL_ARGS, OPS, OP_ALIASES, OP_NAMES, isVarRef, literalBuilder, traceError, type Entry, type Expect, type FieldKind, type IovaRange, type OpName, type Raw, type TraceError, type VarRef,
} from '../../events/index.js';

/** What a batch carries: transferable number buffers and the strings they refer to. */
export interface Batch {
  readonly nums: Float64Array;
  readonly bigs: BigUint64Array;
  /** Strings used only in this batch (refs below zero). */
  readonly strs: readonly string[];
  /** Strings interned by this batch, appended to the table in order (refs from zero). */
  readonly fresh: readonly string[];
}

/** The kinds of item, the first number of each. */
export const TAG = { header: 0, entry: 1, traceError: 2, failure: 3, end: 4 } as const;
export type Tag = (typeof TAG)[keyof typeof TAG];

/** Keys of an entry that are not fields of its op: the ioctl arguments (their codes in a shape). */
const KEY = { size: -1, sizeVar: -2, trailing: -3, argpNull: -4 } as const;

const EXPECT_KINDS = ['', 'ok', 'errno', 'pending', 'fault'] as const;

/** Expect output values: a variable, a string, a number, or any other JSON (as text). */
const OUT = { var: 0, str: 1, num: 2, json: 3 } as const;

interface PackSlot {
  readonly name: string;
  readonly kind: FieldKind;
}

interface PackOp {
  readonly op: OpName;
  readonly written: string;
  readonly slots: readonly PackSlot[];
  readonly slotIndex: ReadonlyMap<string, number>;
  readonly outs: readonly string[];
  readonly outIndex: ReadonlyMap<string, number>;
}

/** Every op name and alias, by the index that travels (both sides build the same table). */
const OPCODES: readonly PackOp[] = [...OP_NAMES, ...Object.keys(OP_ALIASES)].map((written) => {
  const op = (OP_ALIASES[written] ?? written) as OpName;
  const slots = Object.entries(OPS[op].fields).map(([name, f]) => ({ name, kind: f.kind }));
  const outs = OPS[op].out;
  return {
    op, written, slots, slotIndex: new Map(slots.map((s, i) => [s.name, i])), outs, outIndex: new Map(outs.map((k, i) => [k, i])),
  };
});
const OPCODE_OF: ReadonlyMap<string, number> = new Map(OPCODES.map((c, i) => [c.written, i]));

/** A field given as a variable (in a ReadShape's field kinds). */
const VAR = null;

/** A shape compiled for reading: what to read for each key, and the literal builders. */
interface ReadShape {
  readonly op: OpName;
  readonly written: string;
  readonly pidVar: boolean;
  /** The kind of each field in the line's order, VAR for a variable. */
  readonly fields: readonly (FieldKind | typeof VAR)[];
  readonly buildFields: (values: readonly Raw[]) => Record<string, Raw>;
  /** The ioctl arguments' KEY codes in the line's order. */
  readonly ioctl: readonly number[];
  /** The expect's kind, '' for none. */
  readonly expect: (typeof EXPECT_KINDS)[number];
  /** How each output travels (OUT), in the expect's order. */
  readonly outs: readonly number[];
  readonly buildOut: (values: readonly unknown[]) => Record<string, unknown>;
  readonly note: boolean;
}

/** Compiles a shape description (Packer.entry writes it). */
function readShape(d: readonly number[]): ReadShape {
  const c = OPCODES[d[0]!]!;
  const head = d[1]!;
  let p = 2;
  const fieldCodes = d.slice(p + 1, (p += 1 + d[p]!));
  const ioctl = d.slice(p + 1, (p += 1 + d[p]!));
  const expect = EXPECT_KINDS[(head >> 1) & 7]!;
  const outCodes = expect === 'ok' || expect === 'errno' ? d.slice(p + 1, p + 1 + d[p]!) : [];
  return {
    op: c.op,
    written: c.written,
    pidVar: (head & 1) !== 0,
    fields: fieldCodes.map((code) => ((code & 1) !== 0 ? VAR : c.slots[code >> 1]!.kind)),
    buildFields: literalBuilder<Raw>(fieldCodes.map((code) => c.slots[code >> 1]!.name)),
    ioctl,
    expect,
    outs: outCodes.map((code) => code & 3),
    buildOut: literalBuilder<unknown>(outCodes.map((code) => c.outs[code >> 2]!)),
    note: (head & 16) !== 0,
  };
}

/** At most this many interned strings: beyond it, new strings travel with their batch. */
const INTERN_MAX = 1 << 16;

/** At most this many numbered shapes: beyond it, a new shape travels with each of its entries. */
const SHAPE_MAX = 1 << 12;
/** The shape reference that says "a shape description follows" (numbered while below SHAPE_MAX). */
const NEW_SHAPE = -1;

/** How an expect output value travels (OUT): decided by the value, part of the shape. */
function outKind(v: unknown): number {
  if (isVarRef(v)) return OUT.var;
  if (typeof v === 'string') return OUT.str;
  return typeof v === 'number' ? OUT.num : OUT.json;
}

/** Are the first `want.length` numbers of `d` those of `want`? */
function startsWith(d: readonly number[], want: readonly number[]): boolean {
  for (let i = 0; i < want.length; i++) if (d[i] !== want[i]) return false;
  return true;
}

/** Writes items into batches (the worker's side). */
export class Packer {
  private nums: Float64Array = new Float64Array(1 << 12);
  private n = 0;
  private bigs: BigUint64Array = new BigUint64Array(1 << 10);
  private b = 0;
  private strs: string[] = [];
  private fresh: string[] = [];
  private readonly interned = new Map<string, number>();
  /**
   * Shape numbers (given in order of first use, as the Unpacker does) by a hash of their
   * description; each keeps its description to tell hashes that collide apart.
   */
  private readonly shapes = new Map<number, { readonly desc: readonly number[]; readonly id: number }[]>();
  private shapeCount = 0;
  /** The description of the entry being packed (its first `n` numbers: see entry()). */
  private readonly desc: number[] = [];
  /** Items written since the last take(). */
  count = 0;

  private num(x: number): void {
    if (this.n === this.nums.length) {
      const bigger = new Float64Array(this.nums.length * 2);
      bigger.set(this.nums);
      this.nums = bigger;
    }
    this.nums[this.n++] = x;
  }

  private big(x: bigint): void {
    if (this.b === this.bigs.length) {
      const bigger = new BigUint64Array(this.bigs.length * 2);
      bigger.set(this.bigs);
      this.bigs = bigger;
    }
    this.bigs[this.b++] = BigInt.asUintN(64, x);
  }

  /** A string as a ref: interned when `shared` (it is likely to recur), else in this batch. */
  private str(s: string, shared: boolean): void {
    if (shared) {
      let i = this.interned.get(s);
      if (i === undefined && this.interned.size < INTERN_MAX) {
        i = this.interned.size;
        this.interned.set(s, i);
        this.fresh.push(s);
      }
      if (i !== undefined) return this.num(i);
    }
    this.strs.push(s);
    this.num(-this.strs.length);
  }

  header(line: number, text: string): void {
    this.num(TAG.header);
    this.num(line);
    this.str(text, false);
    this.count++;
  }

  traceError(e: TraceError): void {
    this.num(TAG.traceError);
    this.num(e.line);
    this.str(e.message, false);
    this.num(e.field === undefined ? 0 : 1);
    if (e.field !== undefined) this.str(e.field, true);
    this.count++;
  }

  failure(lineNo: number, kind: 'io' | 'internal', message: string): void {
    this.num(TAG.failure);
    this.num(lineNo);
    this.num(kind === 'io' ? 0 : 1);
    this.str(message, false);
    this.count++;
  }

  end(lineNo: number): void {
    this.num(TAG.end);
    this.num(lineNo);
    this.count++;
  }

  entry(e: Entry): void {
    const code = OPCODE_OF.get(e.opWritten)!;
    const c = OPCODES[code]!;
    const x = e.expect;
    const pid = e.pid;
    const pidVar = typeof pid === 'object';
    const fields = e.fields;
    const ioctl = e.ioctl;
    const outs = x !== undefined && (x.kind === 'ok' || x.kind === 'errno') ? x.out : null;
    // The shape: op, head, then the field codes, the ioctl codes and the output codes, each
    // list in the order the line wrote it and after its length.
    const d = this.desc;
    d[0] = code;
    d[1] = (pidVar ? 1 : 0) | ((x === undefined ? 0 : EXPECT_KINDS.indexOf(x.kind)) << 1) | (e.note === undefined ? 0 : 16);
    let n = 3;
    for (const k in fields) d[n++] = c.slotIndex.get(k)! * 2 + (isVarRef(fields[k]) ? 1 : 0);
    d[2] = n - 3;
    const ioctlAt = n++;
    for (const k in ioctl) d[n++] = k === 'size' ? (isVarRef(ioctl.size) ? KEY.sizeVar : KEY.size) : k === 'trailing' ? KEY.trailing : KEY.argpNull;
    d[ioctlAt] = n - ioctlAt - 1;
    if (outs !== null) {
      const outsAt = n++;
      for (const k in outs) d[n++] = c.outIndex.get(k)! * 4 + outKind(outs[k]);
      d[outsAt] = n - outsAt - 1;
    }
    this.num(TAG.entry);
    this.num(e.line);
    this.shape(d, n);
    if (pidVar) this.str(pid.var, true);
    else this.num(pid);
    let i = 3;
    for (const k in fields) {
      const fieldCode = d[i++]!;
      const v = fields[k]!;
      if ((fieldCode & 1) !== 0) this.str((v as VarRef).var, true);
      else this.value(c.slots[fieldCode >> 1]!.kind, v);
    }
    for (const k in ioctl) {
      if (k === 'size') {
        const v = ioctl.size!;
        if (isVarRef(v)) this.str(v.var, true);
        else this.num(v as number);
      } else if (k === 'trailing') this.bytes(ioctl.trailing!);
    }
    if (x !== undefined) this.expect(x);
    if (e.note !== undefined) this.str(e.note, false);
    this.count++;
  }

  /** The shape of the first `n` numbers of `d`: its number, or its description (numbered on both sides while there is room). */
  private shape(d: readonly number[], n: number): void {
    let h = n;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ d[i]!, 0x01000193);
    const bucket = this.shapes.get(h);
    if (bucket !== undefined) for (const s of bucket) if (s.desc.length === n && startsWith(d, s.desc)) return this.num(s.id);
    if (this.shapeCount < SHAPE_MAX) {
      const s = { desc: d.slice(0, n), id: this.shapeCount++ };
      if (bucket !== undefined) bucket.push(s);
      else this.shapes.set(h, [s]);
    }
    this.num(NEW_SHAPE);
    this.num(n);
    for (let i = 0; i < n; i++) this.num(d[i]!);
  }

  private bytes(a: Uint8Array): void {
    this.num(a.length);
    for (let i = 0; i < a.length; i++) this.num(a[i]!);
  }

  private value(kind: FieldKind, v: unknown): void {
    switch (kind.k) {
      case 'int':
        if (kind.bits === 64) this.big(v as bigint);
        else this.num(v as number);
        return;
      case 'flags':
      case 'enum':
        return this.num(v as number);
      case 'str':
        return this.str(v as string, true);
      case 'strlist':
        this.num((v as string[]).length);
        for (const s of v as string[]) this.str(s, true);
        return;
      case 'ranges':
        this.num((v as IovaRange[]).length);
        for (const r of v as IovaRange[]) {
          this.big(r.start);
          this.big(r.last);
        }
        return;
      case 'hex':
        return this.bytes(v as Uint8Array);
    }
  }

  /** The expect's values (its form and output keys are in the shape). */
  private expect(x: Expect): void {
    if (x.kind === 'errno') this.str(x.errno, true);
    else if (x.kind === 'fault') this.str(x.fault, true);
    if (x.kind !== 'ok' && x.kind !== 'errno') return;
    for (const k in x.out) {
      const v = x.out[k];
      switch (outKind(v)) {
        case OUT.var:
          this.str((v as VarRef).var, true);
          break;
        case OUT.str: {
          // Numbers written as strings rarely recur; names do.
          const c0 = (v as string).charCodeAt(0);
          this.str(v as string, !(c0 >= 48 && c0 <= 57) && (v as string).length <= 64);
          break;
        }
        case OUT.num:
          this.num(v as number);
          break;
        default:
          this.str(JSON.stringify(v), false);
      }
    }
  }

  /** The batch written so far (its buffers are handed over: transfer them), and a fresh start. */
  take(): Batch {
    const batch: Batch = { nums: this.nums.slice(0, this.n), bigs: this.bigs.slice(0, this.b), strs: this.strs, fresh: this.fresh };
    this.n = 0;
    this.b = 0;
    this.strs = [];
    this.fresh = [];
    this.count = 0;
    return batch;
  }
}

/** Reads items back from batches, in order (the replaying thread's side). */
export class Unpacker {
  private nums: Float64Array = new Float64Array(0);
  private p = 0;
  private bigs: BigUint64Array = new BigUint64Array(0);
  private b = 0;
  private strs: readonly string[] = [];
  private readonly interned: string[] = [];
  private readonly varRefs: (VarRef | undefined)[] = [];
  /** The shapes numbered so far, by number (the Packer numbers them in the same order). */
  private readonly shapes: ReadShape[] = [];
  /** Values of the object being built, in key order (reading is not reentrant). */
  private readonly values: unknown[] = [];

  /** Starts reading a batch (the previous one must be read to its end). */
  load(batch: Batch): void {
    this.nums = batch.nums;
    this.bigs = batch.bigs;
    this.strs = batch.strs;
    this.p = 0;
    this.b = 0;
    for (const s of batch.fresh) this.interned.push(s);
  }

  /** Is the current batch read to its end? */
  get done(): boolean {
    return this.p >= this.nums.length;
  }

  /** The tag of the next item (call the reader of that tag next). */
  tag(): Tag {
    return this.nums[this.p++] as Tag;
  }

  private num(): number {
    return this.nums[this.p++]!;
  }

  private str(): string {
    const r = this.nums[this.p++]!;
    return r >= 0 ? this.interned[r]! : this.strs[-r - 1]!;
  }

  /**
   * A variable reference. Entries share one VarRef per interned name (VarRefs are
   * read-only): a trace names few variables, and uses them on most lines.
   */
  private varRef(): VarRef {
    const r = this.nums[this.p++]!;
    if (r < 0) return { var: this.strs[-r - 1]! };
    return (this.varRefs[r] ??= { var: this.interned[r]! });
  }

  /** Header: its line and text. */
  header(): { line: number; text: string } {
    const line = this.num();
    return { line, text: this.str() };
  }

  traceError(): TraceError {
    const line = this.num();
    const message = this.str();
    return this.num() === 0 ? traceError(line, message) : traceError(line, message, this.str());
  }

  failure(): { lineNo: number; kind: 'io' | 'internal'; message: string } {
    const lineNo = this.num();
    const kind = this.num() === 0 ? 'io' : 'internal';
    return { lineNo, kind, message: this.str() };
  }

  /** End: the number of lines of the input. */
  end(): number {
    return this.num();
  }

  entry(): Entry {
    const line = this.num();
    const s = this.shape();
    const pid = s.pidVar ? this.varRef() : this.num();
    const v = this.values;
    const kinds = s.fields;
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[i]!;
      v[i] = kind === VAR ? this.varRef() : this.value(kind);
    }
    const fields = s.buildFields(v as Raw[]);
    let ioctl: { size?: unknown; trailing?: Uint8Array; argpNull?: boolean } = NO_IOCTL_ARGS;
    if (s.ioctl.length !== 0) {
      ioctl = {};
      for (const code of s.ioctl) {
        if (code === KEY.size) ioctl.size = this.num();
        else if (code === KEY.sizeVar) ioctl.size = this.varRef();
        else if (code === KEY.trailing) ioctl.trailing = this.bytes();
        else ioctl.argpNull = true;
      }
    }
    const entry: { -readonly [K in keyof Entry]: Entry[K] } = { line, op: s.op, opWritten: s.written, pid, fields, ioctl: ioctl as Entry['ioctl'] };
    if (s.expect !== '') entry.expect = this.expect(s);
    if (s.note) entry.note = this.str();
    return entry;
  }

  /** The next entry's shape: by number, or described here (and numbered while there is room). */
  private shape(): ReadShape {
    const ref = this.num();
    if (ref !== NEW_SHAPE) return this.shapes[ref]!;
    const d = new Array<number>(this.num());
    for (let i = 0; i < d.length; i++) d[i] = this.num();
    const s = readShape(d);
    if (this.shapes.length < SHAPE_MAX) this.shapes.push(s);
    return s;
  }

  private bytes(): Uint8Array {
    const a = new Uint8Array(this.num());
    for (let i = 0; i < a.length; i++) a[i] = this.num();
    return a;
  }

  private value(kind: FieldKind): unknown {
    switch (kind.k) {
      case 'int':
        if (kind.bits !== 64) return this.num();
        return kind.signed ? BigInt.asIntN(64, this.bigs[this.b++]!) : this.bigs[this.b++]!;
      case 'flags':
      case 'enum':
        return this.num();
      case 'str':
        return this.str();
      case 'strlist': {
        const a = new Array<string>(this.num());
        for (let i = 0; i < a.length; i++) a[i] = this.str();
        return a;
      }
      case 'ranges': {
        const a = new Array<IovaRange>(this.num());
        for (let i = 0; i < a.length; i++) a[i] = { start: this.bigs[this.b++]!, last: this.bigs[this.b++]! };
        return a;
      }
      case 'hex':
        return this.bytes();
    }
  }

  private expect(s: ReadShape): Expect {
    const kind = s.expect;
    if (kind === 'pending') return { kind };
    if (kind === 'fault') return { kind, fault: this.str() };
    const errno = kind === 'errno' ? this.str() : '';
    const v = this.values;
    const outs = s.outs;
    for (let i = 0; i < outs.length; i++) {
      switch (outs[i]) {
        case OUT.var:
          v[i] = this.varRef();
          break;
        case OUT.str:
          v[i] = this.str();
          break;
        case OUT.num:
          v[i] = this.num();
          break;
        default:
          v[i] = JSON.parse(this.str());
      }
    }
    const out = s.buildOut(v);
    return kind === 'ok' ? { kind, out } : ({ kind, errno, out } as Expect);
  }
}

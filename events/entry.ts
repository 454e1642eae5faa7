/*
 * entry.ts: the shapes of a parsed trace. An Entry is one line as written (values
 * typed, variables still unresolved); an Input is an Entry after replay resolved its
 * variables: what core/ consumes. Expect is the recorded or required outcome.
 */
import type { FieldValue, VarRef } from './fields.js';
import type { FieldsOf, OpName } from './ops.js';
import type { Errno } from './errno.js';

export type Raw = FieldValue | VarRef;

export interface TraceHeader {
  readonly trace: 'iommufd';
  readonly version: 1;
  /** A built-in platform name, or an inline platform object (validated by core). */
  readonly platform: string | Readonly<Record<string, unknown>>;
  readonly meta: unknown;
  readonly line: number;
}

/** Generic ioctl arguments the kernel checks before a handler runs. */
export interface IoctlArgs {
  /** `size` (iommufd) or `argsz` (VFIO); absent = the full struct size. */
  readonly size?: Raw;
  /** Bytes after the kernel's struct, counted in size: non-zero gives E2BIG. */
  readonly trailing?: Uint8Array;
  /** `"argp": null`: a NULL argument pointer (EFAULT). */
  readonly argpNull?: boolean;
}

export type ExpectValue = VarRef | unknown;

export type Expect =
  | { readonly kind: 'ok'; readonly out: Readonly<Record<string, ExpectValue>> }
  | { readonly kind: 'errno'; readonly errno: Errno; readonly out: Readonly<Record<string, ExpectValue>> }
  | { readonly kind: 'pending' }
  | { readonly kind: 'fault'; readonly fault: string };

export interface Entry {
  readonly line: number;
  readonly op: OpName;
  /** The op name as written (an RFC alias stays visible in reports). */
  readonly opWritten: string;
  readonly pid: number | VarRef;
  /** Only the fields the line gave; absent fields are zero at resolution. */
  readonly fields: Readonly<Record<string, Raw>>;
  readonly ioctl: IoctlArgs;
  readonly expect?: Expect;
  readonly note?: string;
}

/** A resolved operation, as core/ receives it. */
export interface InputOf<K extends OpName> {
  readonly op: K;
  readonly pid: number;
  readonly f: FieldsOf<K>;
  /** Names of the fields the entry gave explicitly (some ops treat absent specially). */
  readonly given: ReadonlySet<string>;
  /** size/argsz the caller passes (defaults to the full struct size). */
  readonly size: number;
  readonly trailing: Uint8Array | null;
  readonly argpNull: boolean;
}

export type Input = { [K in OpName]: InputOf<K> }[OpName];

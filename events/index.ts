/*
 * events/: the contract. The op vocabulary of trace format v1, the errno table, the
 * outcome shape and the codec. Everything other folders use comes from here.
 */
export { ERRNO, ERRNO_MEANING, isErrno } from './errno.js';
export type { Errno } from './errno.js';
export { U64_MAX, isVarRef, parseInteger } from './fields.js';
export type { FieldKind, FieldValue, IovaRange, VarRef } from './fields.js';
export {
  OPS, OP_NAMES, OP_ALIASES, isOpName, ioctlNumber, DEVICE_FLAGS, IOAS_MAP_FLAGS, HWPT_ALLOC_FLAGS,
  OPTION_IDS, OPTION_OPS, VFIO_IOAS_OPS, HWPT_DATA_TYPES, MMAP_PROT, MMAP_FLAGS,
  TEST_OPS, MOCK_DEVICE_FLAGS, TEST_ACCESS_FLAGS,
} from './ops.js';
export type { OpName, OpSchema, FieldsOf, FdKind, IoctlInfo, DeviceFlag } from './ops.js';
export type { Entry, Expect, Input, InputOf, TraceHeader, Raw, IoctlArgs } from './entry.js';
export { ok, fail, fault, pending, printOut, describeOutcome, isOutcome } from './outcome.js';
export type { Outcome, Out, OutValue, OutScalar, OutRecord, FaultKind } from './outcome.js';
export {
  SUPPORTED_VERSIONS, FAULT_KINDS, traceError, isTraceError, isSkippable, parseHeaderLine, parseEntryLine, parseEntry,
  resolveEntry, matchExpect, expectOf, printHeader, printEntry, printExpect, NO_IOCTL_ARGS, literalBuilder,
} from './codec.js';
export type { TraceError, Bindings, Match } from './codec.js';

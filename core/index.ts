/*
 * core/: pure reducers from each operation to the next World and an Outcome.
 * No clock, randomness or I/O. This index is the folder's public face.
 */
import { makeStep } from './step.js';
import { SHALLOW_OPS, TABLE } from './table.js';
import { COPIERS } from './workingCopy.js';

export const step = makeStep(TABLE, SHALLOW_OPS, COPIERS);
/**
 * A step function for one caller that never reads a World again after stepping it
 * (it may return the World it was given, written in place; see makeStep): replay.
 */
export const inPlaceStep = () => makeStep(TABLE, SHALLOW_OPS, COPIERS, true);
export type { StepResult } from './step.js';
export { initialWorld } from './init.js';
export { setFreeze, freezing } from './freeze.js';
export { resolvePlatform, BUILTIN_PLATFORMS } from './platform.js';
export type { Platform, UnitSpec, DeviceSpec, PtFormat } from './platform.js';
export type { World, Ctx, Obj, Group, Device, Proc, OpenFile } from './world.js';
export { stateHash } from './hash.js';
export { selectFaults, selectSummary } from './select.js';
export type { FaultView } from './select.js';

/*
 * properties/: the isolation invariants (invariants.ts), the state-driven fuzzer with
 * shrinking (fuzz.ts, arbitraries.ts). This index is the folder's public face.
 */
export { fuzz, replayFixture } from './fuzz.js';
export type { FuzzOptions, FuzzResult, FuzzFailure, FuzzProgress, Coverage } from './fuzz.js';
export { checkAll, checkAfter, checkWorld, domainMirrorsIoas, iotlbFresh, reachableWithinOwner } from './invariants.js';

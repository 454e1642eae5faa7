/*
 * select.ts: read-only views of a World for users and tools (the CLI's --faults,
 * later the projections): each selector reads, never changes, the World.
 */
import { faultLog } from '../hw/index.js';
import type { World } from './world.js';

export interface FaultView {
  readonly unit: string;
  /** Position in the unit's fault log (from 0). */
  readonly seq: number;
  readonly dev: string;
  readonly dir: string;
  readonly iova: bigint;
  readonly fault: string;
  readonly reason: string;
}

/** Every unit's IOMMU fault log, oldest first, unit by unit. */
export function selectFaults(w: World): FaultView[] {
  const out: FaultView[] = [];
  for (const u of w.platform.units)
    for (const f of faultLog(w.hw, u.name))
      out.push({ unit: u.name, seq: f.seq, dev: f.rid, dir: f.dir, iova: f.iova, fault: f.fault, reason: f.reason });
  return out;
}

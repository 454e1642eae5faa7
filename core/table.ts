/*
 * table.ts: one row per op of the trace vocabulary, like iommufd's ioctl table.
 * The mapped type makes a missing handler a compile error.
 */
import { castDraft, type Draft } from 'immer';
import type { HandlerTable } from './step.js';
import type { OpName } from '../events/index.js';
import type { World } from './world.js';
import { platformHandlers } from './device.js';
import { processHandlers } from './process.js';
import { ctxHandlers } from './ctx.js';
import { vfioHandlers } from './vfio.js';
import { ioasHandlers } from './ioas.js';
import { selftestHandlers } from './selftest.js';
import { newProc } from './process.js';
import { peek } from './peek.js';

const rows: HandlerTable = {
  ...platformHandlers,
  ...processHandlers,
  ...ctxHandlers,
  ...ioasHandlers,
  ...vfioHandlers,
  // The kernel selftest dialect (IOMMU_TEST_CMD), selftest-mock platform only.
  ...selftestHandlers,
};

/** Ops whose handlers only replace top-level World fields (see makeStep). */
export const SHALLOW_OPS: ReadonlySet<OpName> = new Set<OpName>(['dma']);

/** Ops that the platform or a device performs, not a process: they create no process. */
const NO_PROCESS: ReadonlySet<string> = new Set(['spawn', 'device_add', 'device_remove', 'driver_probe', 'driver_remove', 'dma', 'dma_map']);

/** Every handler but spawn (and shallow ops, which touch no process) sees the process exist. */
export const TABLE: HandlerTable = Object.fromEntries(
  Object.entries(rows).map(([op, h]) => [
    op,
    NO_PROCESS.has(op) || SHALLOW_OPS.has(op as OpName)
      ? h
      : (d: Draft<World>, i: { pid: number }, env: unknown) => {
          if (!peek(peek(d).procs)[i.pid]) d.procs[i.pid] = castDraft(newProc(d, i.pid));
          return (h as (d: Draft<World>, i: unknown, env: unknown) => unknown)(d, i, env);
        },
  ]),
) as unknown as HandlerTable;

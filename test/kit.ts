/*
 * kit.ts: a tiny in-memory trace runner for unit tests. A test writes entries as
 * trace-format objects with `expect`, and `runTrace` reports every divergence, so a
 * rule under test reads the way a trace fixture reads.
 */
import { describeOutcome, expectOf, isTraceError, matchExpect, parseEntry, resolveEntry, type Bindings, type Outcome } from '../events/index.js';
import { initialWorld, resolvePlatform, step, type World } from '../core/index.js';

export interface Run {
  readonly world: World;
  readonly outcomes: Outcome[];
  readonly divergences: string[];
  readonly vars: Bindings;
}

export function runTrace(platform: string | Record<string, unknown>, entries: readonly Record<string, unknown>[], start?: World): Run {
  const p = resolvePlatform(platform);
  if (!p.ok) throw new Error(p.message);
  let world = start ?? initialWorld(p.platform);
  const vars: Bindings = new Map();
  const outcomes: Outcome[] = [];
  const divergences: string[] = [];
  entries.forEach((o, idx) => {
    const line = idx + 2;
    const e = parseEntry(o, line);
    if (isTraceError(e)) throw new Error(`entry ${line}: ${e.message}`);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(`entry ${line}: ${input.message}`);
    const r = step(world, input);
    world = r.world;
    outcomes.push(r.outcome);
    if (e.expect) {
      const m = matchExpect(e.expect, r.outcome, vars);
      if (m.diverged)
        divergences.push(`#${line} ${e.op}: ${m.detail} (got ${JSON.stringify(expectOf(r.outcome))}: ${describeOutcome(r.outcome)})`);
    }
  });
  return { world, outcomes, divergences, vars };
}

/** Shorthands for the common setup of a VFIO cdev test. */
export const T = {
  dev: (dev: string, group: number, extra: Record<string, unknown> = {}) => ({ op: 'device_add', dev, group, ...extra, expect: { ok: true } }),
  vfio: (dev: string) => ({ op: 'driver_probe', dev, driver: 'vfio-pci', expect: { ok: true } }),
  iommufd: (v: string, pid = 1) => ({ op: 'open', pid, path: '/dev/iommu', expect: { ok: true, fd: v } }),
  cdev: (dev: string, v: string, pid = 1) => ({ op: 'open', pid, dev, expect: { ok: true, fd: v } }),
  ioas: (ifd: string, v: string, pid = 1) => ({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd, expect: { ok: true, out_ioas_id: v } }),
  bind: (dfd: string, ifd: string, v: string, pid = 1) => ({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: dfd, iommufd: ifd, expect: { ok: true, out_devid: v } }),
  attach: (dfd: string, pt: string, v: string, pid = 1) => ({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: pt, expect: { ok: true, pt_id: v } }),
};

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

/**
 * A compact, JSON-ready summary of the control plane: devices (driver, group),
 * groups (owner, domain), iommufd contexts (objects, with IOAS areas), processes
 * (fds, pins). What a user wants to see at a divergence (`replay --state`).
 */
export function selectSummary(w: World): Record<string, unknown> {
  const hex = (n: bigint) => `0x${n.toString(16)}`;
  const dom = (g: World['groups'][number]) => g.domain.kind === 'hwpt' ? `ctx ${g.domain.ctx} HWPT ${g.domain.hwpt}` : g.domain.kind;
  return {
    devices: Object.values(w.devices).map((d) => ({ dev: d.name, group: d.group, driver: d.driver ?? 'none', ...(d.cdev !== null ? { cdev: `vfio${d.cdev}` } : {}), ...(d.removePending ? { removing: d.removePending } : {}) })),
    groups: Object.values(w.groups).map((g) => ({ group: g.id, owner: g.owner ? `ctx ${g.owner.ctx}` : 'kernel', claims: g.ownerCnt, domain: dom(g) })),
    iommufds: Object.values(w.ctxs).map((c) => ({
      ctx: c.id,
      objects: Object.values(c.objects).map((o) => {
        switch (o.type) {
          case 'ioas':
            return { id: o.id, type: 'IOAS', areas: [...o.data.areas.entries()].map((a) => `${hex(a.start)}-${hex(a.last)}`), alignment: hex(o.data.iovaAlignment), hwpts: o.data.hwpts };
          case 'hwpt_paging':
            return { id: o.id, type: 'HWPT_PAGING', ioas: o.ioas, auto: o.auto, devices: o.devices };
          case 'device':
            return { id: o.id, type: 'DEVICE', dev: o.dev, attached: o.attached };
          case 'access':
            return { id: o.id, type: 'ACCESS', ioas: o.ioas };
          default:
            return { id: o.id, type: o.type };
        }
      }),
    })),
    processes: Object.values(w.procs).map((p) => ({ pid: p.pid, fds: Object.keys(p.fds).map(Number), pinnedPages: p.pinnedPages })),
  };
}

/*
 * init.ts: the World a trace starts from: the platform's IOMMU units in the
 * simulated hardware, its pre-existing devices (each group in its default domain,
 * with its initial driver), and nothing else.
 */
import { produce } from 'immer';
import { EMPTY_HW, addUnit } from '../hw/index.js';
import { Memory } from './mem.js';
import type { Platform } from './platform.js';
import type { World } from './world.js';
import { addDevice, probeDriver } from './device.js';

export function initialWorld(platform: Platform): World {
  let hw = EMPTY_HW;
  for (const u of platform.units) hw = addUnit(hw, u.name, u.format, { iotlbCapacity: u.iotlbEntries });
  const empty: World = {
    platform, procs: {}, procSerial: 0, maxPid: 0, files: {}, nextFile: 1, ctxs: {}, nextCtx: 1, devices: {}, groups: {}, cdevs: {}, users: {},
    mem: Memory.empty(), hw,
  };
  return produce(empty, (d) => {
    for (const spec of platform.devices) {
      const r = addDevice(d, spec.dev, spec.iommu, spec.group, spec.flags);
      if (r) throw new Error(`platform device ${spec.dev}: ${r.reason}`);
      if (spec.driver) {
        const p = probeDriver(d, spec.dev, spec.driver);
        if (p) throw new Error(`platform device ${spec.dev}: ${p.reason}`);
      }
    }
  });
}

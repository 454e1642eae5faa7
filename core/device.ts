/*
 * device.ts: the platform side: hot-plug and hot-unplug of devices, kernel driver
 * probe and removal (with the bus dma_configure ownership check), device DMA
 * through the simulated IOMMU, and DMA-API mappings of kernel buffers.
 *
 * Invariants kept here: a DMA-API driver never binds in a user-owned group
 * (EBUSY); a device held by a VFIO user is removed only when its last fd closes
 * (the removal is pending until then); binding vfio-pci creates the lowest free
 * /dev/vfio/devices/vfioN.
 */
import { castDraft, type Draft } from 'immer';
import { memOf } from './mem.js';
import { U64_MAX, fail, fault, ok, pending, type DeviceFlag, type InputOf, type Outcome } from '../events/index.js';
import type { Device, World } from './world.js';
import { contextFor, describeDomain, isDmaManaged, unuseDefaultDomain, useDefaultDomain } from './ownership.js';
import { hwAllocDomain, hwDma, hwFreeDomain, hwMap, hwSetContext, hwUnmap } from './hwsync.js';
import { vfioUsers } from './vfio.js';
import { hasBug } from './bugs.js';
import { peek, plat } from './peek.js';

/** The longest single DMA request the simulator translates (4 GiB). */
const MAX_DMA = 1n << 32n;

type Fail = { errno: 'EEXIST' | 'ENODEV' | 'EINVAL' | 'EBUSY'; reason: string };

export function addDevice(d: Draft<World>, name: string, unit: string, groupId: number, flags: readonly DeviceFlag[]): Fail | null {
  if (d.devices[name]) return { errno: 'EEXIST', reason: `device ${name} already exists` };
  const spec = plat(d).units.find((u) => u.name === unit);
  if (!spec) return { errno: 'ENODEV', reason: `no IOMMU unit named ${unit} (platform ${plat(d).name} has ${plat(d).units.map((u) => u.name).join(', ')})` };
  let g = d.groups[groupId];
  if (g && g.unit !== unit) return { errno: 'EINVAL', reason: `group ${groupId} is behind ${g.unit}, not ${unit}` };
  if (!g) {
    const dom = hwAllocDomain(d, unit, { pageSizes: spec.pageSizes, hugePages: true });
    d.groups[groupId] = { id: groupId, unit, devices: [], ownerCnt: 0, owner: null, domain: { kind: 'default' }, defaultDomain: dom, dmaNext: 0x100000n };
    g = d.groups[groupId]!;
  }
  g.devices = [...peek(g.devices), name];
  d.devices[name] = { name, unit, group: groupId, driver: null, cdev: null, flags: [...flags], removePending: null, dmaMaps: [] };
  // A new device joins its group's current domain (iommu_group_add_device).
  hwSetContext(d, unit, name, contextFor(g, g.domain));
  return null;
}

function lowestFreeCdev(d: Draft<World>): number {
  let n = 0;
  while (d.cdevs[n] !== undefined) n++;
  return n;
}

export function probeDriver(d: Draft<World>, name: string, driver: string): Fail | null {
  const dev = d.devices[name];
  if (!dev) return { errno: 'ENODEV', reason: `no device ${name}` };
  if (dev.removePending) return { errno: 'ENODEV', reason: `${name} is being removed` };
  if (dev.driver) return { errno: 'EBUSY', reason: `${name} is already bound to ${dev.driver}` };
  const g = d.groups[dev.group]!;
  if (!isDmaManaged(driver)) {
    let why: string | null = null;
    if (hasBug(d, 'probe-ignores-ownership')) g.ownerCnt++;
    else why = useDefaultDomain(d, g);
    if (why) return { errno: 'EBUSY', reason: `${driver} is a DMA-API driver and ${why}` };
  }
  dev.driver = driver;
  if (driver === 'vfio-pci') {
    const n = lowestFreeCdev(d);
    d.cdevs[n] = name;
    dev.cdev = n;
  }
  return null;
}

/** Unbinds the driver now (the caller has checked no VFIO user holds the device). */
function unbindDriver(d: Draft<World>, dev: Draft<Device>): void {
  const g = d.groups[dev.group]!;
  // A well-behaved driver unmaps and frees its DMA buffers in .remove.
  for (const m of dev.dmaMaps) {
    hwUnmap(d, g.unit, g.defaultDomain, m.iova, m.length);
    d.mem = castDraft(memOf(d).unmapFrames(m.pa, m.length));
  }
  dev.dmaMaps = [];
  if (dev.driver && !isDmaManaged(dev.driver)) unuseDefaultDomain(g);
  if (dev.cdev !== null) delete d.cdevs[dev.cdev];
  dev.cdev = null;
  dev.driver = null;
}

function removeNow(d: Draft<World>, dev: Draft<Device>): void {
  unbindDriver(d, dev);
  const g = d.groups[dev.group]!;
  g.devices = g.devices.filter((n) => n !== dev.name);
  hwSetContext(d, dev.unit, dev.name, null);
  delete d.devices[dev.name];
  if (g.devices.length === 0 && g.ownerCnt === 0) {
    hwFreeDomain(d, g.unit, g.defaultDomain);
    delete d.groups[g.id];
  }
}

/** Completes a pending removal once no VFIO fd holds the device (called from close). */
export function finishPendingRemoval(d: Draft<World>, name: string): void {
  const dev = d.devices[name];
  if (!dev || !dev.removePending || vfioUsers(d, name) > 0) return;
  const what = dev.removePending;
  dev.removePending = null;
  if (what === 'device') removeNow(d, dev);
  else unbindDriver(d, dev);
}

/**
 * vfio_unregister_group_dev: the cdev node goes at once (vfio_device_del), so new
 * opens find nothing; the unregistration itself waits for the open files.
 */
function startPendingRemoval(d: Draft<World>, dev: Draft<Device>, what: 'device' | 'driver'): void {
  dev.removePending = what;
  if (dev.cdev !== null) delete d.cdevs[dev.cdev];
  dev.cdev = null;
}

export const platformHandlers = {
  device_add(d: Draft<World>, i: InputOf<'device_add'>): Outcome {
    const unit = i.given.has('iommu') ? i.f.iommu : plat(d).units[0]!.name;
    const r = addDevice(d, i.f.dev, unit, i.f.group, i.f.flags as DeviceFlag[]);
    if (r) return fail(r.errno, r.reason);
    const g = d.groups[i.f.group]!;
    return ok({}, `${i.f.dev} joins group ${i.f.group} behind ${unit}, in ${describeDomain(g.domain)}`);
  },

  device_remove(d: Draft<World>, i: InputOf<'device_remove'>): Outcome {
    const dev = d.devices[i.f.dev];
    if (!dev) return fail('ENODEV', `no device ${i.f.dev}`);
    const users = vfioUsers(d, dev.name);
    if (users > 0) {
      startPendingRemoval(d, dev, 'device');
      return pending(`${dev.name} is held by ${users} VFIO file${users > 1 ? 's' : ''}; removal completes when the last closes`);
    }
    removeNow(d, dev);
    return ok();
  },

  driver_probe(d: Draft<World>, i: InputOf<'driver_probe'>): Outcome {
    const r = probeDriver(d, i.f.dev, i.f.driver);
    if (r) return fail(r.errno, r.reason);
    const dev = d.devices[i.f.dev]!;
    return ok({}, dev.cdev !== null ? `/dev/vfio/devices/vfio${dev.cdev} appears` : undefined);
  },

  driver_remove(d: Draft<World>, i: InputOf<'driver_remove'>): Outcome {
    const dev = d.devices[i.f.dev];
    if (!dev) return fail('ENODEV', `no device ${i.f.dev}`);
    if (!dev.driver) return fail('ENODEV', `${dev.name} has no driver bound`);
    const users = vfioUsers(d, dev.name);
    if (users > 0) {
      // vfio_unregister_group_dev waits for the last user; model it as a pending removal.
      startPendingRemoval(d, dev, 'driver');
      return pending(`${dev.name} is held by ${users} VFIO file${users > 1 ? 's' : ''}; the driver unbinds when the last closes`);
    }
    unbindDriver(d, dev);
    return ok();
  },

  dma(d: Draft<World>, i: InputOf<'dma'>): Outcome {
    const dev = d.devices[i.f.dev];
    if (!dev) return fail('ENODEV', `no device ${i.f.dev}`);
    if (i.f.length === 0n) return fail('EINVAL', 'a DMA of length 0');
    // Translation walks every leaf of the range; a device request is bounded (decisions.md).
    if (i.f.length > MAX_DMA) return fail('EINVAL', `a DMA request of ${i.f.length} bytes is longer than the modelled maximum of 4 GiB`);
    const r = hwDma(d, dev.unit, dev.name, i.f.iova, i.f.length, i.f.dir as 'read' | 'write');
    if (!r.ok) return fault(r.fault, `${dev.name} ${i.f.dir} at 0x${r.iova.toString(16)}: ${r.reason} (group ${dev.group} is in ${describeDomain(d.groups[dev.group]!.domain)})`);
    const who = d.mem.ownerOf(r.pa);
    const owner = !who ? 'none' : who.owner.kind === 'kernel' ? 'kernel' : `pid:${who.owner.pid}`;
    const out: Record<string, bigint | string> = { pa: r.pa, owner };
    if (who && who.owner.kind === 'proc') out.va = who.owner.va + who.offset;
    return ok(out);
  },

  dma_map(d: Draft<World>, i: InputOf<'dma_map'>): Outcome {
    const dev = d.devices[i.f.dev];
    if (!dev) return fail('ENODEV', `no device ${i.f.dev}`);
    if (!dev.driver || isDmaManaged(dev.driver)) return fail('EINVAL', `${dev.name} has no DMA-API driver bound to map kernel buffers`);
    const g = d.groups[dev.group]!;
    if (g.domain.kind !== 'default') return fail('EINVAL', `group ${g.id} is not in its default domain`);
    if (i.f.length === 0n || i.f.length > U64_MAX / 2n) return fail('EINVAL', `bad length ${i.f.length}`);
    const page = plat(d).pageSize;
    const len = ((i.f.length + page - 1n) / page) * page;
    const a = d.mem.allocFrames(len, { kind: 'kernel', dev: dev.name }, 0n);
    d.mem = a.mem;
    const iova = g.dmaNext;
    g.dmaNext = iova + len;
    hwMap(d, g.defaultDomain, iova, a.pa, len, 3);
    dev.dmaMaps = [...peek(dev.dmaMaps), { iova, length: len, pa: a.pa }];
    return ok({ iova });
  },
};

/*
 * basic.ts: the `basic` workload: the control plane the model supports today, as a
 * host running VFIO passthrough tenants would exercise it. A setup hot-plugs eight
 * PCI functions in six IOMMU groups (some multi-function) and binds drivers; then
 * up to three actors (processes) work at once, interleaved entry by entry:
 *
 * - passthrough (most often): take a group, bind vfio-pci, open /dev/iommu and the
 *   device cdev, IOAS_ALLOC, BIND (EPERM while a group-mate has a DMA-API driver:
 *   unbind it and retry), ATTACH to the IOAS, device DMA (faults: blocked before
 *   attach, not_present in an empty IOAS), DESTROY while attached (EBUSY), a DMA-API
 *   probe on a group-mate (EBUSY), replace onto a second IOAS, detach/re-attach
 *   cycles, sometimes a hot-unplug while held (pending until close), then close or
 *   exit;
 * - kernel: a DMA-API driver (nvme, ixgbe, ...) takes a device, maps a buffer with
 *   the DMA API and the device reads it (ok, owner kernel) or misses it (fault);
 * - errors: the small mistakes real programs make (unknown IDs, bad flags, short
 *   size, wrong fd kind, closed fds, legacy VFIO paths);
 * - contention: a second process tries to take a device another tenant holds.
 */
import type { Outcome } from '../../events/index.js';
import { op, interleave, type GenApi, type Req, type Script, type Workload } from './script.js';

interface GroupSpec {
  readonly id: number;
  readonly devices: readonly string[];
}

const GROUPS: readonly GroupSpec[] = [
  { id: 1, devices: ['0000:01:00.0'] },
  { id: 2, devices: ['0000:02:00.0', '0000:02:00.1'] },
  { id: 3, devices: ['0000:03:00.0'] },
  { id: 4, devices: ['0000:04:00.0', '0000:04:00.1'] },
  { id: 5, devices: ['0000:05:00.0'] },
  { id: 6, devices: ['0000:06:00.0'] },
];
const INITIAL_DRIVERS: Readonly<Record<string, string>> = {
  '0000:01:00.0': 'ixgbe',
  '0000:02:00.0': 'vfio-pci',
  '0000:02:00.1': 'vfio-pci',
  '0000:03:00.0': 'nvme',
  '0000:04:00.0': 'vfio-pci',
  '0000:04:00.1': 'snd_hda_intel',
  '0000:05:00.0': 'vfio-pci',
};
const KERNEL_DRIVERS = ['nvme', 'ixgbe', 'e1000e', 'mlx5_core', 'ahci'] as const;
const DMA_MANAGED = ['vfio-pci', 'pci-stub'];
const PAGE = 0x1000;

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const isOk = (o: Outcome) => o.kind === 'ok';

class Basic {
  readonly busy = new Set<number>();
  private nextPid = 100;
  readonly unit: string;

  constructor(readonly g: GenApi) {
    this.unit = g.platform.units[0]!.name;
  }

  pid(): number {
    return this.nextPid++;
  }

  device(name: string) {
    return this.g.world().devices[name];
  }

  groupOf(name: string): GroupSpec {
    return GROUPS.find((x) => x.devices.includes(name))!;
  }

  /** A random IOVA in the low 4 GiB, page aligned. */
  iova(): string {
    return hex(this.g.rng.int(0x100000) * PAGE);
  }

  /** A DMA request from `dev` (a device op: no pid). */
  *dma(dev: string, dir?: 'read' | 'write', iova?: string): Generator<Req, Outcome, Outcome> {
    const rng = this.g.rng;
    return yield* op({
      op: 'dma', dev, iova: iova ?? this.iova(),
      length: hex(rng.pick([4, 64, PAGE, 2 * PAGE])), dir: dir ?? rng.pick(['read', 'write'] as const),
    });
  }

  /** Makes sure `dev` exists (hot-plugging it back if a tenant removed it). */
  *present(dev: string): Script {
    if (this.device(dev)) return;
    yield* op({ op: 'device_add', dev, iommu: this.unit, group: this.groupOf(dev).id });
  }

  *setup(): Script {
    for (const grp of GROUPS)
      for (const dev of grp.devices) yield* op({ op: 'device_add', dev, iommu: this.unit, group: grp.id });
    for (const [dev, driver] of Object.entries(INITIAL_DRIVERS)) yield* op({ op: 'driver_probe', dev, driver });
    // The kernel drivers map their rings; their devices read them.
    for (const [dev, driver] of Object.entries(INITIAL_DRIVERS)) {
      if (DMA_MANAGED.includes(driver)) continue;
      const o = yield* op({ op: 'dma_map', dev, length: hex(4 * PAGE) });
      if (o.kind === 'ok') yield* this.dma(dev, 'read', hex(o.out.iova as bigint));
    }
  }

  /** Unbinds DMA-API drivers from the group-mates of `dev` (each with probability p). */
  *unbindMates(dev: string, p: number): Script {
    for (const mate of this.groupOf(dev).devices) {
      const d = this.device(mate);
      if (mate !== dev && d?.driver && !DMA_MANAGED.includes(d.driver) && this.g.rng.chance(p)) yield* op({ op: 'driver_remove', dev: mate });
    }
  }

  *passthrough(grp: GroupSpec): Script {
    const { rng } = this.g;
    const pid = this.pid();
    const dev = rng.pick(grp.devices);
    yield* this.present(dev);
    yield* this.unbindMates(dev, 0.7);
    let d = this.device(dev);
    if (d?.driver !== 'vfio-pci') {
      if (d?.driver) yield* op({ op: 'driver_remove', dev });
      yield* op({ op: 'driver_probe', dev, driver: 'vfio-pci' });
    }
    const ifd = this.g.fresh('ifd');
    if (!isOk(yield* op({ op: 'open', pid, path: '/dev/iommu' }, { fd: ifd }))) return;
    d = this.device(dev);
    const dfd = this.g.fresh('dfd');
    const byPath = d?.cdev !== null && d?.cdev !== undefined && rng.chance(0.5);
    const opened = yield* op(byPath ? { op: 'open', pid, path: `/dev/vfio/devices/vfio${d!.cdev}` } : { op: 'open', pid, dev }, { fd: dfd });
    if (!isOk(opened)) {
      yield* op({ op: 'exit', pid });
      return;
    }
    if (rng.chance(0.3)) yield* this.dma(dev);
    let ioas = this.g.fresh('ioas');
    if (!isOk(yield* op({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd }, { out_ioas_id: ioas }))) return;
    if (rng.chance(0.15)) yield* op({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: ioas }); // EINVAL: not bound yet
    let bound = yield* op({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: dfd, iommufd: ifd }, { out_devid: this.g.fresh('devid') });
    if (!isOk(bound) && bound.kind === 'errno' && bound.errno === 'EPERM' && rng.chance(0.8)) {
      // The group is not viable: a group-mate still has a DMA-API driver. Unbind it and retry.
      yield* this.unbindMates(dev, 1);
      bound = yield* op({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: dfd, iommufd: ifd }, { out_devid: this.g.fresh('devid') });
    }
    if (!isOk(bound)) {
      if (rng.chance(0.5)) yield* op({ op: 'close', pid, fd: dfd });
      yield* op({ op: 'exit', pid });
      return;
    }
    if (rng.chance(0.5)) yield* this.dma(dev); // blocked: the group is in the blocking domain
    let attached = isOk(yield* op({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: ioas }, { pt_id: this.g.fresh('hwpt') }));
    for (let k = rng.int(3); k > 0; k--) yield* this.dma(dev); // not_present: nothing is mapped
    if (rng.chance(0.5)) yield* op({ op: 'IOMMU_DESTROY', pid, fd: ifd, id: ioas }); // EBUSY while attached
    if (rng.chance(0.4)) {
      const mate = grp.devices.find((m) => m !== dev && this.device(m)?.driver === null);
      if (mate) yield* op({ op: 'driver_probe', dev: mate, driver: rng.pick(KERNEL_DRIVERS) }); // EBUSY: user-owned group
    }
    if (attached && rng.chance(0.3)) {
      // Move to a second IOAS (replace), then the first one can go.
      const second = this.g.fresh('ioas');
      if (isOk(yield* op({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd }, { out_ioas_id: second }))) {
        const moved = yield* op({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: second }, { pt_id: this.g.fresh('hwpt') });
        if (isOk(moved)) {
          yield* op({ op: 'IOMMU_DESTROY', pid, fd: ifd, id: ioas });
          ioas = second;
        }
      }
    }
    for (let k = rng.int(3); k > 0; k--) {
      yield* op({ op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', pid, fd: dfd });
      attached = false;
      if (rng.chance(0.6)) yield* this.dma(dev); // blocked again
      attached = isOk(yield* op({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: ioas }, { pt_id: this.g.fresh('hwpt') }));
      if (rng.chance(0.3)) yield* this.dma(dev);
    }
    let removed = false;
    if (rng.chance(0.12)) removed = (yield* op({ op: 'device_remove', dev })).kind === 'pending';
    if (attached && rng.chance(0.5)) {
      yield* op({ op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', pid, fd: dfd });
      attached = false;
    }
    yield* op({ op: 'IOMMU_DESTROY', pid, fd: ifd, id: ioas }); // EBUSY when still attached
    if (rng.chance(0.5)) {
      yield* op({ op: 'close', pid, fd: dfd });
      if (rng.chance(0.3)) yield* this.dma(dev); // after close: back in the default domain (or gone)
      yield* op({ op: 'close', pid, fd: ifd });
    }
    yield* op({ op: 'exit', pid });
    if (removed) yield* this.present(dev);
  }

  *kernel(grp: GroupSpec): Script {
    const { rng } = this.g;
    const dev = rng.pick(grp.devices);
    yield* this.present(dev);
    let d = this.device(dev);
    if (d?.driver && DMA_MANAGED.includes(d.driver)) yield* op({ op: 'driver_remove', dev });
    d = this.device(dev);
    if (d && !d.driver) yield* op({ op: 'driver_probe', dev, driver: rng.pick(KERNEL_DRIVERS) });
    for (let k = 1 + rng.int(2); k > 0; k--) {
      const m = yield* op({ op: 'dma_map', dev, length: hex(rng.pick([1, 4, 16]) * PAGE) });
      if (m.kind === 'ok') {
        const iova = m.out.iova as bigint;
        yield* this.dma(dev, rng.pick(['read', 'write'] as const), hex(iova));
        if (rng.chance(0.3)) yield* this.dma(dev, 'read', hex(iova + 0x1000000n)); // nothing mapped there
      }
    }
    if (rng.chance(0.2)) yield* op({ op: 'driver_probe', dev, driver: 'vfio-pci' }); // EBUSY: already bound
    if (rng.chance(0.5) && this.device(dev)?.driver) yield* op({ op: 'driver_remove', dev });
  }

  *errors(): Script {
    const { rng } = this.g;
    const pid = this.pid();
    const ifd = this.g.fresh('ifd');
    if (!isOk(yield* op({ op: 'open', pid, path: '/dev/iommu' }, { fd: ifd }))) return;
    const mistakes: (() => Script)[] = [
      function* () { yield* op({ op: 'IOMMU_DESTROY', pid, fd: ifd, id: 50 + rng.int(50) }); }, // ENOENT
      function* () { yield* op({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd, flags: 1 }); }, // EOPNOTSUPP
      function* () { yield* op({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd, size: 8 }); }, // EINVAL: below min size
      function* () { yield* op({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd, trailing: '0x00000001' }); }, // E2BIG
      function* () { yield* op({ op: 'open', pid, path: `/dev/vfio/devices/vfio${20 + rng.int(10)}` }); }, // ENOENT
      function* () { yield* op({ op: 'open', pid, path: '/dev/vfio/vfio' }); }, // legacy container: not modelled
      function* () { yield* op({ op: 'close', pid, fd: 40 + rng.int(20) }); }, // EBADF
      function* () { yield* op({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: ifd, iommufd: ifd }); }, // ENOTTY on an iommufd
      function* () { yield* op({ op: 'IOMMU_DESTROY', pid, fd: 3 + 30 + rng.int(5), id: 1 }); }, // EBADF
    ];
    const self = this;
    mistakes.push(function* () {
      // A DMA-API driver for a device whose group a tenant owns: EBUSY.
      const w = self.g.world();
      const victim = Object.values(w.devices).find((x) => x.driver === null && w.groups[x.group]?.owner !== null);
      if (victim) yield* op({ op: 'driver_probe', dev: victim.name, driver: rng.pick(KERNEL_DRIVERS) });
    });
    for (let k = 2 + rng.int(3); k > 0; k--) yield* rng.pick(mistakes)();
    yield* op({ op: 'exit', pid });
  }

  /** Another process tries to take a device a tenant holds. */
  *contention(): Script {
    const { rng } = this.g;
    const w = this.g.world();
    const held = Object.values(w.devices).filter((x) => x.cdev !== null && this.busy.has(x.group));
    if (held.length === 0) return;
    const dev = rng.pick(held).name;
    const pid = this.pid();
    const ifd = this.g.fresh('ifd');
    if (!isOk(yield* op({ op: 'open', pid, path: '/dev/iommu' }, { fd: ifd }))) return;
    const dfd = this.g.fresh('dfd');
    if (isOk(yield* op({ op: 'open', pid, dev }, { fd: dfd }))) {
      yield* op({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: dfd, iommufd: ifd }, { out_devid: this.g.fresh('devid') });
      if (rng.chance(0.5)) yield* op({ op: 'close', pid, fd: dfd });
    }
    yield* op({ op: 'exit', pid });
  }

  /** Runs `s`, holding group `id` while it runs. */
  *holding(id: number, s: Script): Script {
    this.busy.add(id);
    try {
      yield* s;
    } finally {
      this.busy.delete(id);
    }
  }

  next(): Script {
    const { rng } = this.g;
    const free = GROUPS.filter((x) => !this.busy.has(x.id));
    const kind = rng.weighted({ passthrough: 6, kernel: 2, errors: 1, contention: 1 });
    if ((kind === 'passthrough' || kind === 'kernel') && free.length > 0) {
      const grp = rng.pick(free);
      return this.holding(grp.id, kind === 'passthrough' ? this.passthrough(grp) : this.kernel(grp));
    }
    return kind === 'contention' ? this.contention() : this.errors();
  }
}

function* main(g: GenApi): Script {
  const b = new Basic(g);
  yield* b.setup();
  for (;;) yield* interleave(g.rng, 3, () => b.next());
}

export const basic: Workload = {
  name: 'basic',
  doc: 'VFIO cdev passthrough tenants, kernel DMA-API drivers, contention and common mistakes (control plane, DMA faults)',
  main,
};

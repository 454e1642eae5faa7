/*
 * vmChurn.ts: the `vm-churn` workload: a VM process with four passthrough devices
 * (three alone in their groups, two sharing one) maps its guest RAM once, then runs
 * a long vIOMMU-style churn: the guest driver maps and unmaps buffers of mixed
 * sizes (4 KiB to 2 MiB) at guest-chosen IOVAs, and devices DMA between them into
 * live buffers (ok), into RAM (ok), and into buffers just unmapped (not_present).
 * Most entries are MAP, UNMAP and DMA: the data plane's hot path.
 */
import { op, type GenApi, type Script, type Workload } from './script.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const RAM = 2 * GiB;
const BUF_POOL = 256 * MiB;
const WINDOW = 0x1_0000_0000; // guest IOVA window for churn buffers, above RAM
const MAX_LIVE = 2048;
const SIZES = [0x1000, 0x2000, 0x4000, 0x10000, 0x40000, 0x200000];
const hex = (n: number) => `0x${n.toString(16)}`;

const DEVICES = [
  { dev: '0000:01:00.0', group: 11 },
  { dev: '0000:02:00.0', group: 12 },
  { dev: '0000:03:00.0', group: 13 },
  { dev: '0000:04:00.0', group: 14 },
  { dev: '0000:04:00.1', group: 14 },
];

function* main(g: GenApi): Script {
  const pid = 1;
  yield* op({ op: 'spawn', pid, caps: ['IPC_LOCK'] });
  for (const d of DEVICES) {
    yield* op({ op: 'device_add', dev: d.dev, group: d.group });
    yield* op({ op: 'driver_probe', dev: d.dev, driver: 'vfio-pci' });
  }
  const ifd = g.fresh('ifd');
  yield* op({ op: 'open', pid, path: '/dev/iommu' }, { fd: ifd });
  const ioas = g.fresh('ioas');
  yield* op({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd }, { out_ioas_id: ioas });
  const ram = g.fresh('ram');
  yield* op({ op: 'mmap', pid, length: hex(RAM), flags: ['PRIVATE', 'HUGETLB'] }, { addr: ram });
  const po = yield* op({ op: 'mmap', pid, length: hex(BUF_POOL) }, { addr: g.fresh('pool') });
  if (po.kind !== 'ok') throw new Error('vm-churn: the buffer pool mmap failed');
  const poolAddr = po.out.addr as bigint;
  const devs: string[] = [];
  for (const d of DEVICES) {
    const dfd = g.fresh('dfd');
    yield* op({ op: 'open', pid, dev: d.dev }, { fd: dfd });
    yield* op({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: dfd, iommufd: ifd }, { out_devid: g.fresh('devid') });
    yield* op({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: ioas }, { pt_id: g.fresh('hwpt') });
    devs.push(d.dev);
  }
  // Guest RAM at IOVA 0 (identity, as a VMM without a vIOMMU maps it), below the MSI window.
  yield* op({ op: 'IOMMU_IOAS_MAP', pid, fd: ifd, ioas_id: ioas, flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: ram, length: hex(RAM), iova: 0 });

  const live: { iova: number; length: number }[] = [];
  const dead: { iova: number; length: number }[] = [];
  let cursor = 0;
  for (;;) {
    const r = g.rng.u32() % 100;
    const dev = devs[g.rng.u32() % devs.length]!;
    // A guest keeps a bounded working set: past MAX_LIVE buffers it only unmaps.
    if ((r < 34 || live.length < 4) && live.length < MAX_LIVE) {
      const length = SIZES[g.rng.u32() % SIZES.length]!;
      // Guest IOVAs: a bump cursor through a 64 GiB window, aligned to the size.
      cursor = Math.ceil(cursor / length) * length;
      if (cursor + length > 64 * GiB) cursor = 0;
      const iova = WINDOW + cursor;
      cursor += length;
      const off = (g.rng.u32() % (BUF_POOL / 0x1000 - length / 0x1000)) * 0x1000;
      const o = yield* op({
        op: 'IOMMU_IOAS_MAP', pid, fd: ifd, ioas_id: ioas, flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'],
        user_va: `0x${(poolAddr + BigInt(off)).toString(16)}`, length: hex(length), iova: hex(iova),
      });
      if (o.kind === 'ok') live.push({ iova, length });
    } else if ((r < 64 || live.length >= MAX_LIVE) && live.length > 0) {
      const k = g.rng.u32() % live.length;
      const m = live[k]!;
      live[k] = live[live.length - 1]!;
      live.pop();
      yield* op({ op: 'IOMMU_IOAS_UNMAP', pid, fd: ifd, ioas_id: ioas, iova: hex(m.iova), length: hex(m.length) });
      dead.push(m);
      if (dead.length > 64) dead.shift();
    } else {
      const pick = g.rng.u32() % 10;
      const dir = g.rng.u32() % 2 ? 'read' : 'write';
      let iova: number;
      if (pick < 6 && live.length) {
        const m = live[g.rng.u32() % live.length]!;
        iova = m.iova + (g.rng.u32() % (m.length / 0x1000)) * 0x1000;
      } else if (pick < 9 || !dead.length) {
        iova = (g.rng.u32() % (RAM / 0x1000)) * 0x1000;
      } else {
        iova = dead[g.rng.u32() % dead.length]!.iova;
      }
      yield* op({ op: 'dma', dev, iova: hex(iova), length: 64, dir });
    }
  }
}

export const vmChurn: Workload = {
  name: 'vm-churn',
  doc: 'a VM maps its RAM, then a long vIOMMU-style map/unmap churn of mixed sizes with DMA between',
  main,
};

// HWPT_ALLOC, GET_HW_INFO, dirty tracking (kernel-semantics.md §3.11-3.14, §6.7),
// and inline platforms.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { T, runTrace } from '../test/kit.js';

const ok = (r: { divergences: string[] }) => assert.equal(r.divergences, []);
const MiB = 1024 * 1024;
const bound = [
  T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'),
];

test('HWPT_ALLOC: manual HWPT on an IOAS, attach by HWPT ID, not freed on detach, destroy rules', () => {
  ok(runTrace('x86-vtd', [
    ...bound,
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', expect: { ok: true, out_hwpt_id: '$H' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$H', expect: { ok: true, pt_id: '$H' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$H', expect: { errno: 'EBUSY' } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
    // automatic selection never picks a manual HWPT: attaching the IOAS makes a new one
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { ok: true, pt_id: 4 } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$H', expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { ok: true } },
  ]));
});

test('HWPT_ALLOC errno order: reserved, data_len, dev_id ENOENT, pt_id EINVAL, flags, dirty capability', () => {
  ok(runTrace('x86-vtd', [
    ...bound,
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', __reserved: 1, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', data_len: 8, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', data_type: 'VTD_S1', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: 77, pt_id: '$A', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: 77, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$D', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', flags: 0x100, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', size: 20, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', trailing: '0x01', expect: { errno: 'E2BIG' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', flags: ['NEST_PARENT'], expect: { ok: true, out_hwpt_id: '$P' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$P', data_type: 'VTD_S1', data_len: 8, expect: { errno: 'EOPNOTSUPP' } },
  ]));
  ok(runTrace('x86-vtd', [
    T.dev('d0', 1, { flags: ['NO_DIRTY_TRACKING'] }), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'),
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', flags: ['DIRTY_TRACKING'], expect: { errno: 'EOPNOTSUPP' } },
  ]));
});

test('cache coherency is fixed at allocation: a non-enforcing device cannot join an enforcing HWPT', () => {
  ok(runTrace('x86-vtd', [
    ...bound,
    T.dev('d1', 2, { flags: ['NO_ENFORCE_COHERENCY'] }), T.vfio('d1'), T.cdev('d1', '$d1'), T.bind('$d1', '$ifd', '$D1'),
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', expect: { ok: true, out_hwpt_id: '$H' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$d1', pt_id: '$H', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D1', pt_id: '$A', expect: { ok: true, out_hwpt_id: '$H1' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$H1', expect: { ok: true, pt_id: '$H1' } },
  ]));
});

test('GET_HW_INFO per platform', () => {
  ok(runTrace('x86-vtd', [
    ...bound,
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', expect: { ok: true, data_len: 24, out_data_type: 1, out_capabilities: 1 } },
    // cap_reg: ND 64K, SAGAW 4-level, MGAW 47, SLLPS 2M+1G; ecap_reg: C QI IR PT SC SMTS SLADS
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', data_len: 24, data_uptr: '0x1000', expect: { ok: true, data_len: 24, data: '0x000000000000000006042f000c000000cb00000000280000' } },
    // a short buffer gets the first bytes; a long one is zero-filled past the kernel's struct
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', data_len: 4, data_uptr: '0x1000', expect: { ok: true, data_len: 24, data: '0x00000000' } },
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', data_len: 28, data_uptr: '0x1000', expect: { ok: true, data: '0x000000000000000006042f000c000000cb0000000028000000000000' } },
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$A', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', flags: 2, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', flags: ['INPUT_TYPE'], in_data_type: 2, expect: { errno: 'EOPNOTSUPP' } },
  ]));
  ok(runTrace('arm-smmuv3', [
    ...bound,
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', expect: { ok: true, data_len: 40, out_data_type: 2 } },
    // IDR0: S2P S1P TTF=AArch64 COHACC HTTU=A+D ASID16 VMID16 ST_LEVEL=2; IDR1 SIDSIZE 16; IDR5 OAS 48-bit, GRAN4K
    { op: 'IOMMU_GET_HW_INFO', fd: '$ifd', dev_id: '$D', data_len: 40, data_uptr: '0x1000', expect: { ok: true, data: '0x00000000000000009b10040810000000000000000000000000000000150000003b04000002000000' } },
  ]));
});

test('dirty tracking: DMA writes set dirty bits; GET_DIRTY_BITMAP reads and clears them', () => {
  ok(runTrace('x86-vtd', [
    ...bound,
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', flags: ['DIRTY_TRACKING'], expect: { ok: true, out_hwpt_id: '$H' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$A', expect: { ok: true, out_hwpt_id: '$Plain' } },
    T.attach('$dfd', '$H', '$H'),
    { op: 'mmap', length: 4 * 4096, expect: { ok: true, addr: '$buf' } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length: 16384, iova: '0x10000', expect: { ok: true } },
    { op: 'IOMMU_HWPT_SET_DIRTY_TRACKING', fd: '$ifd', hwpt_id: '$Plain', flags: ['ENABLE'], expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_HWPT_SET_DIRTY_TRACKING', fd: '$ifd', hwpt_id: '$A', flags: ['ENABLE'], expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_HWPT_SET_DIRTY_TRACKING', fd: '$ifd', hwpt_id: '$H', flags: 2, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_HWPT_SET_DIRTY_TRACKING', fd: '$ifd', hwpt_id: '$H', flags: ['ENABLE'], expect: { ok: true } },
    { op: 'dma', dev: 'd0', iova: '0x12000', length: 8, dir: 'write', expect: { ok: true } },
    { op: 'dma', dev: 'd0', iova: '0x10000', length: 8, dir: 'read', expect: { ok: true } },
    { op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$ifd', hwpt_id: '$H', iova: '0x10000', length: 16384, page_size: 4096, flags: ['NO_CLEAR'], expect: { ok: true, bitmap: 4 } },
    { op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$ifd', hwpt_id: '$H', iova: '0x10000', length: 16384, page_size: 4096, expect: { ok: true, bitmap: 4 } },
    { op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$ifd', hwpt_id: '$H', iova: '0x10000', length: 16384, page_size: 4096, expect: { ok: true, bitmap: 0 } },
    { op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$ifd', hwpt_id: '$H', iova: '0x10000', length: 16384, page_size: 0, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$ifd', hwpt_id: '$H', iova: '0x10800', length: 16384, page_size: 4096, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$ifd', hwpt_id: '$H', iova: '0xffffffffffff0000', length: '0x20000', page_size: 4096, expect: { errno: 'EOVERFLOW' } },
  ]));
});

test('an inline platform: its own unit, aperture and reserved window', () => {
  const platform = {
    name: 'tiny', iommus: [{ name: 'iommu9', format: 'vtd-sl', aperture: { start: 0, last: '0xffffffff' }, reserved: [{ start: '0x8000', last: '0x8fff', type: 'msi' }] }],
    devices: [{ dev: 'nic', group: 3, driver: 'vfio-pci' }],
  };
  ok(runTrace(platform, [
    T.iommufd('$ifd'), T.cdev('nic', '$dfd'), T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', num_iovas: 2, expect: { ok: true, num_iovas: 2, allowed_iovas: [{ start: 0, last: '0x7fff' }, { start: '0x9000', last: '0xffffffff' }] } },
    { op: 'mmap', length: MiB, expect: { ok: true, addr: '$buf' } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '$buf', length: 4096, iova: '0x100000000', expect: { errno: 'EINVAL' } },
  ]));
});

test.run();

// Kernel parity: the errno rules of kernel-semantics.md §2-§3 not covered by the
// per-family tests, one case per rule, in the kernel's order of checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { T, runTrace } from '../test/kit.js';

const ok = (r: { divergences: string[] }) => assert.equal(r.divergences, []);
const MiB = 1024 * 1024;
const base = [
  T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'), T.ioas('$ifd', '$B'),
  T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
  { op: 'mmap', length: 4 * MiB, expect: { ok: true, addr: '$buf' } },
  { op: 'mmap', length: MiB, prot: ['READ'], expect: { ok: true, addr: '$ro' } },
  { op: 'memfd_create', length: 4096, expect: { ok: true, fd: '$mfd' } },
];

test('generic ioctl dispatch (§2): EBADF, ENOTTY on a non-iommufd file, EFAULT, min size EINVAL, E2BIG, zero-extended short struct', () => {
  ok(runTrace('x86-vtd', [
    ...base,
    { op: 'IOMMU_IOAS_ALLOC', fd: 77, expect: { errno: 'EBADF' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$mfd', expect: { errno: 'ENOTTY' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', argp: null, expect: { errno: 'EFAULT' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', size: 8, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', trailing: '0x00000001', expect: { errno: 'E2BIG' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', trailing: '0x00000000', expect: { ok: true } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['READABLE'], user_va: '$buf', length: 4096, size: 36, expect: { errno: 'EINVAL' } },
    { op: 'ioctl', fd: '$ifd', cmd: '0x3bff', expect: { errno: 'ENOTTY' } },
    { op: 'ioctl', fd: '$mfd', cmd: '0x3bff', expect: { errno: 'ENOTTY' } },
  ]));
});

test('IOAS_ALLOC (§3.2): flags must be 0 (EOPNOTSUPP); IDs are the lowest free, reused after destroy', () => {
  ok(runTrace('x86-vtd', [
    T.iommufd('$ifd'),
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', flags: 1, expect: { errno: 'EOPNOTSUPP' } },
    T.ioas('$ifd', '$A'), T.ioas('$ifd', '$B'),
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { ok: true } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', expect: { ok: true, out_ioas_id: 1 } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$ifd', expect: { ok: true, out_ioas_id: 3 } },
  ]));
});

test('ALLOW_IOVAS (§3.3): __reserved EOPNOTSUPP, ENOENT, EFAULT past the array, empty list clears', () => {
  ok(runTrace('x86-vtd', [
    ...base,
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', __reserved: 1, allowed_iovas: [], expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: 99, allowed_iovas: [], expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', num_iovas: 2, allowed_iovas: [{ start: '0x100000', last: '0x1fffff' }], expect: { errno: 'EFAULT' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', allowed_iovas: [{ start: '0x100000', last: '0x1fffff' }], expect: { ok: true } },
    // ALLOW_IOVAS does not constrain FIXED maps, and IOVA_RANGES ignores it (§13)
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '$buf', length: 4096, iova: '0x40000000', expect: { ok: true } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', num_iovas: 2, expect: { ok: true, num_iovas: 2 } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', allowed_iovas: [], expect: { ok: true } },
  ]));
});

test('COPY (§3.4) in order: flags, overflow, R/W, source ENOENT, length 0, hole, destination ENOENT, placement, EPERM', () => {
  ok(runTrace('x86-vtd', [
    ...base,
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length: MiB, iova: '0x100000', expect: { ok: true } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '$ro', length: MiB, iova: '0x200000', expect: { ok: true } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: 8, dst_ioas_id: '$B', src_ioas_id: '$A', length: 4096, src_iova: '0x100000', expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: '0xffffffffffffffff', src_iova: '0x100000', expect: { errno: 'EOVERFLOW' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA'], dst_ioas_id: '$B', src_ioas_id: '$A', length: 4096, src_iova: '0x100000', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: '$B', src_ioas_id: 99, length: 4096, src_iova: '0x100000', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: 0, src_iova: '0x100000', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: '0x200000', src_iova: '0x100000', expect: { ok: true, dst_iova: '$c1' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: '0x300000', src_iova: '0x100000', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: 99, src_ioas_id: '$A', length: 4096, src_iova: '0x100000', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: '$A', src_ioas_id: '$A', length: 4096, src_iova: '0x100000', dst_iova: '0x100000', expect: { errno: 'EEXIST' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: '$A', src_ioas_id: '$A', length: 4096, src_iova: '0x100000', dst_iova: '0xfee00000', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], dst_ioas_id: '$A', src_ioas_id: '$A', length: 4096, src_iova: '0x200000', dst_iova: '0x800000', expect: { errno: 'EPERM' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: '$A', src_ioas_id: '$A', length: 4096, src_iova: '0x200000', dst_iova: '0x800000', expect: { ok: true, dst_iova: '0x800000' } },
  ]));
});

test('IOVA_RANGES (§3.5) and UNMAP (§3.8): reserved, ENOENT, EOVERFLOW', () => {
  ok(runTrace('x86-vtd', [
    ...base,
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', __reserved: 1, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: 99, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: 99, iova: 0, length: 4096, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0xffffffffffffffff', length: 4096, expect: { errno: 'EOVERFLOW' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0xfffffffffffff000', length: '0x2000', expect: { errno: 'EOVERFLOW' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: 0, length: '0xffffffffffffffff', expect: { ok: true, length: 0 } },
  ]));
});

test('OPTION (§3.9) and VFIO_IOAS (§3.10): reserved fields and unknown ops', () => {
  ok(runTrace('x86-vtd', [
    ...base,
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'GET', object_id: '$A', __reserved: 1, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 5, object_id: '$A', expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'SET', object_id: '$D', val64: 1, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['READABLE'], user_va: '$buf', length: 4096, expect: { ok: true } },
    // huge pages cannot be turned off while the IOAS has both a domain and a mapping
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'SET', object_id: '$A', val64: 0, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 'GET', __reserved: 1, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 7, expect: { errno: 'EOPNOTSUPP' } },
  ]));
});

test('DESTROY (§3.1): ENOENT for unknown and for an ID of the other iommufd; a manual HWPT keeps its IOAS busy', () => {
  ok(runTrace('x86-vtd', [
    ...base,
    { op: 'open', path: '/dev/iommu', expect: { ok: true, fd: '$i2' } },
    { op: 'IOMMU_DESTROY', fd: '$i2', id: '$A', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_HWPT_ALLOC', fd: '$ifd', dev_id: '$D', pt_id: '$B', expect: { ok: true, out_hwpt_id: '$M' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$B', expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$M', expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$B', expect: { ok: true } },
  ]));
});

test.run();

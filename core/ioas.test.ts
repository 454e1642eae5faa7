// IOAS data plane: MAP, UNMAP, COPY, IOVA_RANGES, ALLOW_IOVAS, OPTION, VFIO_IOAS
// (kernel-semantics.md §3.2-3.10, §5, §7).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { T, runTrace } from '../test/kit.js';
import { domainStats } from '../hw/index.js';

const ok = (r: { divergences: string[] }) => assert.equal(r.divergences, []);
const MiB = 1024 * 1024;
const attached = [
  T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'),
  T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
  { op: 'mmap', length: 4 * MiB, expect: { ok: true, addr: '$buf' } },
];
const map = (iova: string | number, length: number, extra: Record<string, unknown> = {}) => ({
  op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length, iova, ...extra,
});

test('MAP then DMA reaches the process page; UNMAP makes it fault', () => {
  const r = runTrace('x86-vtd', [
    ...attached,
    { ...map('0x100000', 2 * MiB), expect: { ok: true, iova: '0x100000' } },
    { op: 'dma', dev: 'd0', iova: '0x100010', length: 8, dir: 'write', expect: { ok: true, owner: 'pid:1' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x100000', length: 2 * MiB, expect: { ok: true, length: 2 * MiB } },
    { op: 'dma', dev: 'd0', iova: '0x100010', length: 8, dir: 'read', expect: { fault: 'not_present' } },
  ]);
  ok(r);
  const dma = r.outcomes[9]!;
  assert.ok(dma.kind === 'ok');
  if (dma.kind === 'ok') assert.is(dma.out.va, (r.vars.get('$buf') as bigint) + 0x10n);
  assert.is(r.world.users[1000]!.lockedPages, 0);
});

test('MAP checks in order: flags, reserved, overflow, R/W, ENOENT, length, alignment, EEXIST, reserved window', () => {
  ok(runTrace('x86-vtd', [
    ...attached,
    { ...map('0x100000', 4096, { flags: 8 }), expect: { errno: 'EOPNOTSUPP' } },
    { ...map('0x100000', 4096, { __reserved: 1 }), expect: { errno: 'EOPNOTSUPP' } },
    { ...map('0xffffffffffffffff', 4096), expect: { errno: 'EOVERFLOW' } },
    { ...map('0x100000', 4096, { flags: ['FIXED_IOVA'] }), expect: { errno: 'EINVAL' } },
    { ...map('0x100000', 4096, { ioas_id: 99 }), expect: { errno: 'ENOENT' } },
    { ...map('0x100000', 0), expect: { errno: 'EINVAL' } },
    { ...map('0x100000', 100), expect: { errno: 'EINVAL' } },
    { ...map('0x100100', 4096), expect: { errno: 'EINVAL' } },
    { ...map('0x100000', 8192), expect: { ok: true } },
    { ...map('0x101000', 4096), expect: { errno: 'EEXIST' } },
    { ...map('0xfee00000', 4096), expect: { errno: 'EINVAL' } },
    { ...map('0x1000000000000', 4096), expect: { errno: 'EINVAL' } },
  ]));
});

test('MAP without FIXED_IOVA: first fit, never IOVA 0, user offset kept, honours ALLOW_IOVAS', () => {
  ok(runTrace('x86-vtd', [
    ...attached,
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['READABLE'], user_va: '$buf', length: 4096, expect: { ok: true, iova: '0x1000' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', allowed_iovas: [{ start: '0x40000000', last: '0x4fffffff' }], expect: { ok: true } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['READABLE'], user_va: '$buf', length: 8192, expect: { ok: true, iova: '0x40000000' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', allowed_iovas: [{ start: '0xfe000000', last: '0xfeffffff' }], expect: { errno: 'EADDRINUSE' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', allowed_iovas: [{ start: 5, last: 5 }], expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_ALLOW_IOVAS', fd: '$ifd', ioas_id: '$A', allowed_iovas: [{ start: 0, last: 100 }, { start: 50, last: 200 }], expect: { errno: 'EINVAL' } },
  ]));
});

test('UNMAP: whole areas only (ENOENT cutting one), holes allowed, unmap-all, ENOENT when empty, partial failure keeps earlier areas unmapped', () => {
  ok(runTrace('x86-vtd', [
    ...attached,
    { ...map('0x100000', 8192), expect: { ok: true } },
    { ...map('0x200000', 8192), expect: { ok: true } },
    { ...map('0x300000', 8192), expect: { ok: true } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x100000', length: 4096, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x0', length: 0, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x100000', length: '0x101000', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x100000', length: 8192, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x200000', length: '0x200000', expect: { ok: true, length: 16384 } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: 0, length: '0xffffffffffffffff', expect: { ok: true, length: 0 } },
    { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '0x100000', length: 8192, expect: { errno: 'ENOENT' } },
  ]));
});

test('IOVA_RANGES: holes of the reserved tree; EMSGSIZE writes the count back', () => {
  ok(runTrace('x86-vtd', [
    T.iommufd('$ifd'), T.ioas('$ifd', '$A'),
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', num_iovas: 4, expect: { ok: true, num_iovas: 1, out_iova_alignment: 1, allowed_iovas: [{ start: 0, last: '0xffffffffffffffff' }] } },
  ]));
  ok(runTrace('x86-vtd', [
    ...attached,
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', num_iovas: 1, expect: { errno: 'EMSGSIZE', num_iovas: 2, out_iova_alignment: 4096 } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', num_iovas: 2, expect: { ok: true, num_iovas: 2, allowed_iovas: [{ start: 0, last: '0xfedfffff' }, { start: '0xfef00000', last: '0xffffffffffff' }] } },
  ]));
});

test('RLIMIT_MEMLOCK: pinning past the limit is ENOMEM and leaves no pins; IPC_LOCK is not charged', () => {
  const r = runTrace('x86-vtd', [
    ...attached,
    { op: 'setrlimit', memlock: 1 * MiB, expect: { ok: true } },
    { ...map('0x100000', 2 * MiB), expect: { errno: 'ENOMEM' } },
    { ...map('0x100000', 1 * MiB), expect: { ok: true } },
  ]);
  ok(r);
  assert.is(r.world.users[1000]!.lockedPages, 256);
});

test('MAP into an IOAS with no domain pins nothing; the attach pins and can fail EFAULT for a bad VA', () => {
  const r = runTrace('x86-vtd', [
    T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'),
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '0x5000000000', length: 4096, iova: '0x1000', expect: { ok: true } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { errno: 'EFAULT' } },
  ]);
  ok(r);
});

test('odd-aligned maps on a bare IOAS make the attach fail EADDRINUSE', () => {
  ok(runTrace('x86-vtd', [
    T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'),
    { op: 'mmap', length: 8192, expect: { ok: true, addr: '$buf' } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '$buf', length: 100, iova: '0x1001', expect: { ok: true } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { errno: 'EADDRINUSE' } },
  ]));
});

test('COPY shares pages (pinned once) and survives unmapping the source', () => {
  const r = runTrace('x86-vtd', [
    ...attached,
    T.ioas('$ifd', '$B'),
    { ...map('0x100000', 1 * MiB), expect: { ok: true } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: 4096, src_iova: '0x101000', dst_iova: '0x9000', expect: { ok: true } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: 4096, src_iova: '0x300000', dst_iova: '0x20000', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['READABLE'], dst_ioas_id: '$B', src_ioas_id: '$A', length: 4096, src_iova: '0x101000', expect: { ok: true, dst_iova: '$c' } },
  ]);
  ok(r);
  assert.is(r.world.users[1000]!.lockedPages, 256);
});

test('OPTION: RLIMIT_MODE needs CAP_SYS_RESOURCE and an empty ctx; HUGE_PAGES per IOAS', () => {
  ok(runTrace('x86-vtd', [
    T.iommufd('$ifd'),
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'RLIMIT_MODE', option_op: 'GET', expect: { ok: true, val64: 0 } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'RLIMIT_MODE', option_op: 'SET', val64: 1, expect: { errno: 'EPERM' } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'RLIMIT_MODE', option_op: 'GET', object_id: 1, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 7, option_op: 'GET', expect: { errno: 'EOPNOTSUPP' } },
    T.ioas('$ifd', '$A'),
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'GET', object_id: '$A', expect: { ok: true, val64: 1 } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'SET', object_id: '$A', val64: 2, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'SET', object_id: '$A', val64: 0, expect: { ok: true } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$ifd', ioas_id: '$A', num_iovas: 1, expect: { ok: true, out_iova_alignment: 4096 } },
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'HUGE_PAGES', option_op: 'GET', object_id: 99, expect: { errno: 'ENOENT' } },
  ]));
  ok(runTrace('x86-vtd', [
    { op: 'spawn', caps: ['SYS_RESOURCE'], expect: { ok: true } },
    T.iommufd('$ifd'),
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'RLIMIT_MODE', option_op: 'SET', val64: 1, expect: { ok: true } },
    T.ioas('$ifd', '$A'),
    { op: 'IOMMU_OPTION', fd: '$ifd', option_id: 'RLIMIT_MODE', option_op: 'SET', val64: 0, expect: { errno: 'EBUSY' } },
  ]));
});

test('VFIO_IOAS: GET ENODEV, SET ENOENT, set/get/clear; destroying the compat IOAS clears it', () => {
  ok(runTrace('x86-vtd', [
    T.iommufd('$ifd'), T.ioas('$ifd', '$A'),
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 'GET', expect: { errno: 'ENODEV' } },
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 'SET', ioas_id: 9, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 'SET', ioas_id: '$A', expect: { ok: true } },
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 'GET', expect: { ok: true, ioas_id: '$A' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { ok: true } },
    { op: 'IOMMU_VFIO_IOAS', fd: '$ifd', vfio_ioas_op: 'GET', expect: { errno: 'ENODEV' } },
  ]));
});

test('close of everything returns pins and charges to zero', () => {
  const r = runTrace('x86-vtd', [
    ...attached,
    { ...map('0x100000', 2 * MiB), expect: { ok: true } },
    { op: 'exit', expect: { ok: true } },
  ]);
  ok(r);
  assert.is(r.world.users[1000]!.lockedPages, 0);
  assert.is(r.world.mem.pins.size, 0);
});

test('a 1 TiB MAP and its UNMAP cost table nodes, not bytes: 1024 1 GiB leaves', () => {
  const TiB = '0x10000000000';
  const r = runTrace('x86-vtd', [
    { op: 'spawn', caps: ['IPC_LOCK'], expect: { ok: true } },
    T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'),
    T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
    { op: 'mmap', length: TiB, flags: ['PRIVATE', 'HUGETLB'], expect: { ok: true, addr: '$ram' } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$ram', length: TiB, iova: '0x10000000000', expect: { ok: true } },
    { op: 'dma', dev: 'd0', iova: '0x18000000000', length: 8, dir: 'read', expect: { ok: true, owner: 'pid:1' } },
  ]);
  ok(r);
  const h = Object.values(r.world.ctxs[1]!.objects).find((o) => o.type === 'hwpt_paging')!;
  const st = domainStats(r.world.hw, (h as { domain: number }).domain);
  assert.equal(st.leaves.filter((l) => l.count > 0).map((l) => [Number(l.pageSize), l.count]), [[1 << 30, 1024]]);
  const u = runTrace('x86-vtd', [
    { op: 'IOMMU_IOAS_UNMAP', fd: 3, ioas_id: 1, iova: 0, length: '0xffffffffffffffff', expect: { ok: true, length: TiB } },
    { op: 'dma', dev: 'd0', iova: '0x18000000000', length: 8, dir: 'read', expect: { fault: 'not_present' } },
  ], r.world);
  ok(u);
  assert.equal(u.world.procs[1]!.pinnedPages, 0);
});

test.run();

// IOMMU_TEST_CMD and the access kAPI (kernel-semantics.md §8; drivers/iommu/iommufd/
// selftest.c): every errno rule the model implements, and EDEADLOCK at the model level.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { produce } from 'immer';
import { T, runTrace } from '../test/kit.js';
import type { AccessObj } from './world.js';

const ok = (r: { divergences: string[] }) => assert.equal(r.divergences, []);
const AP = '0x1000000';
const tc = (test_op: string, expect: Record<string, unknown>, f: Record<string, unknown> = {}) => ({ op: 'IOMMU_TEST_CMD', fd: '$fd', test_op, ...f, expect });
const base = [
  { op: 'open', path: '/dev/iommu', expect: { ok: true, fd: '$fd' } },
  { op: 'IOMMU_IOAS_ALLOC', fd: '$fd', expect: { ok: true, out_ioas_id: '$ioas' } },
  { op: 'mmap', length: '0x10000', flags: ['SHARED'], expect: { ok: true, addr: '$buf' } },
  { op: 'mmap', addr: '0x100000000', length: '0x10000', flags: ['SHARED'], expect: { ok: true, addr: '$buf' } },
];
const map = (iova: string, length: string, extra: Record<string, unknown> = {}) => ({
  op: 'IOMMU_IOAS_MAP', fd: '$fd', ioas_id: '$ioas', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length, iova, ...extra,
});

test('IOMMU_TEST_CMD is ENOTTY without CONFIG_IOMMUFD_TEST, before any size check', () => {
  ok(runTrace('x86-vtd', [T.iommufd('$fd'), { op: 'IOMMU_TEST_CMD', fd: '$fd', test_op: 'MOCK_DOMAIN', size: 4, expect: { errno: 'ENOTTY' } }]));
  ok(runTrace('selftest-mock', [
    T.iommufd('$fd'),
    { op: 'IOMMU_TEST_CMD', fd: '$fd', test_op: 'MOCK_DOMAIN', size: 4, expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_TEST_CMD', fd: '$fd', test_op: 99, expect: { errno: 'EOPNOTSUPP' } },
    { op: 'IOMMU_TEST_CMD', fd: 42, test_op: 'MOCK_DOMAIN', expect: { errno: 'EBADF' } },
  ]));
});

test('MOCK_DOMAIN: IDs in kernel order (stdev, idev, hwpt); ENOENT/EINVAL targets; bad flags; destroy removes the device', () => {
  const r = runTrace('selftest-mock', [
    ...base,
    tc('MOCK_DOMAIN', { ok: true, out_stdev_id: 2, out_idev_id: 3, out_hwpt_id: 4 }, { id: '$ioas' }),
    tc('MOCK_DOMAIN', { ok: true, out_stdev_id: 5, out_idev_id: 6, out_hwpt_id: 4 }, { id: 4 }),
    tc('MOCK_DOMAIN', { errno: 'ENOENT' }, { id: 77 }),
    tc('MOCK_DOMAIN', { errno: 'EINVAL' }, { id: 3 }),
    tc('MOCK_DOMAIN_FLAGS', { errno: 'EINVAL' }, { id: '$ioas', dev_flags: 8 }),
    { op: 'IOMMU_DESTROY', fd: '$fd', id: 3, expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$ioas', expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: 2, expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: 5, expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: 4, expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$ioas', expect: { ok: true } },
  ]);
  ok(r);
  assert.equal(Object.keys(r.world.devices), []);
  assert.equal(Object.keys(r.world.groups), []);
});

test('MOCK_DOMAIN_FLAGS: HUGE_IOVA gets 1 MiB IO pages; NO_DIRTY cannot join a dirty-tracking HWPT', () => {
  const r = runTrace('selftest-mock', [
    ...base,
    tc('MOCK_DOMAIN_FLAGS', { ok: true, out_hwpt_id: '$h', out_idev_id: '$i' }, { id: '$ioas', dev_flags: ['HUGE_IOVA'] }),
    { op: 'mmap', addr: '0x200000000', length: '0x200000', flags: ['SHARED', 'HUGETLB'], expect: { ok: true } },
    map('0x1100000', '0x200000', { user_va: '0x200000000' }),
    tc('MD_CHECK_MAP', { ok: true }, { id: '$h', iova: '0x1100000', length: '0x200000', uptr: '0x200000000' }),
    { op: 'IOMMU_HWPT_ALLOC', fd: '$fd', dev_id: '$i', pt_id: '$ioas', flags: ['DIRTY_TRACKING'], expect: { ok: true, out_hwpt_id: '$dh' } },
    tc('MOCK_DOMAIN_FLAGS', { errno: 'EINVAL' }, { id: '$dh', dev_flags: ['NO_DIRTY'] }),
    tc('MOCK_DOMAIN_FLAGS', { ok: true, out_idev_id: '$nd' }, { id: '$ioas', dev_flags: ['NO_DIRTY', 'PASID'] }),
    { op: 'IOMMU_GET_HW_INFO', fd: '$fd', dev_id: '$nd', expect: { ok: true, out_capabilities: 0, out_max_pasid_log2: 20 } },
  ]);
  ok(r);
  const leaves = Object.values(r.world.ctxs)[0]!;
  void leaves;
  const dev = Object.values(r.world.devices).find((x) => x.flags.includes('HUGE_IOVA'));
  assert.ok(dev);
});

test('MOCK_DOMAIN_REPLACE: ENOENT for a non-SELFTEST id or a missing pt; EINVAL for another object type', () => {
  ok(runTrace('selftest-mock', [
    ...base,
    tc('MOCK_DOMAIN', { ok: true, out_stdev_id: '$s', out_hwpt_id: '$h', out_idev_id: '$i' }, { id: '$ioas' }),
    tc('MOCK_DOMAIN_REPLACE', { errno: 'ENOENT' }, { id: '$i', pt_id: '$ioas' }),
    tc('MOCK_DOMAIN_REPLACE', { errno: 'ENOENT' }, { id: '$s', pt_id: 50 }),
    tc('MOCK_DOMAIN_REPLACE', { errno: 'EINVAL' }, { id: '$s', pt_id: '$i' }),
    tc('MOCK_DOMAIN_REPLACE', { ok: true, pt_id: '$h' }, { id: '$s', pt_id: '$ioas' }),
  ]));
});

test('ADD_RESERVED: ENOENT, EADDRINUSE over areas or allowed ranges, then MAP avoids it', () => {
  ok(runTrace('selftest-mock', [
    ...base,
    tc('ADD_RESERVED', { errno: 'ENOENT' }, { id: 9, start: '0x1000', length: '0x1000' }),
    map('0x2000', '0x1000'),
    tc('ADD_RESERVED', { errno: 'EADDRINUSE' }, { id: '$ioas', start: '0x2000', length: '0x1000' }),
    tc('ADD_RESERVED', { ok: true }, { id: '$ioas', start: '0x4000', length: '0x1000' }),
    map('0x4000', '0x1000', { expect: { errno: 'EINVAL' } }),
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$fd', ioas_id: '$ioas', num_iovas: 4, expect: { ok: true, num_iovas: 2 } },
  ]));
});

test('MD_CHECK_MAP and MD_CHECK_REFS: alignment EINVAL, ENOENT for a non-HWPT, EINVAL on mismatch, EFAULT, EIO on the pin count', () => {
  ok(runTrace('selftest-mock', [
    ...base,
    tc('MOCK_DOMAIN', { ok: true, out_hwpt_id: '$h' }, { id: '$ioas' }),
    map(AP, '0x2000'),
    tc('MD_CHECK_MAP', { errno: 'EINVAL' }, { id: '$h', iova: '0x1000001', length: '0x800', uptr: '$buf' }),
    tc('MD_CHECK_MAP', { errno: 'ENOENT' }, { id: '$ioas', iova: AP, length: '0x800', uptr: '$buf' }),
    tc('MD_CHECK_MAP', { ok: true }, { id: '$h', iova: AP, length: '0x2000', uptr: '$buf' }),
    tc('MD_CHECK_MAP', { errno: 'EINVAL' }, { id: '$h', iova: AP, length: '0x3000', uptr: '$buf' }),
    tc('MD_CHECK_MAP', { errno: 'EFAULT' }, { id: '$h', iova: AP, length: '0x800', uptr: '0x800000' }),
    tc('MD_CHECK_REFS', { errno: 'EINVAL' }, { uptr: '$buf', length: '0x800', refs: 1 }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x2000', refs: 1 }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x1000', refs: 1 }),
    tc('MD_CHECK_REFS', { errno: 'EIO' }, { uptr: '$buf', length: '0x3000', refs: 1 }),
    { op: 'IOMMU_IOAS_UNMAP', fd: '$fd', ioas_id: '$ioas', iova: AP, length: '0x2000', expect: { ok: true } },
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x10000', refs: 0 }),
  ]));
});

const withAccess = (flags: unknown = ['NEEDS_PIN_PAGES']) => [
  ...base,
  tc('CREATE_ACCESS', { ok: true, out_access_fd: '$afd' }, { id: '$ioas', flags }),
];

test('CREATE_ACCESS: EOPNOTSUPP flags, ENOENT ioas, EADDRINUSE when existing areas are not page aligned; the object is busy', () => {
  ok(runTrace('selftest-mock', [
    ...base,
    tc('CREATE_ACCESS', { errno: 'EOPNOTSUPP' }, { id: '$ioas', flags: 2 }),
    tc('CREATE_ACCESS', { errno: 'ENOENT' }, { id: 7, flags: ['NEEDS_PIN_PAGES'] }),
    map('0x800', '0x800'),
    tc('CREATE_ACCESS', { errno: 'EADDRINUSE' }, { id: '$ioas', flags: ['NEEDS_PIN_PAGES'] }),
    tc('CREATE_ACCESS', { ok: true, out_access_fd: '$afd' }, { id: '$ioas', flags: 0 }),
    { op: 'IOMMU_DESTROY', fd: '$fd', id: 2, expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$ioas', expect: { errno: 'EBUSY' } },
    { op: 'close', fd: '$afd', expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$ioas', expect: { ok: true } },
  ]));
});

test('ACCESS_PAGES: ENOMEM >16 MiB, EOPNOTSUPP flags, EBADFD, EOPNOTSUPP without NEEDS_PIN_PAGES', () => {
  ok(runTrace('selftest-mock', [
    ...withAccess(0),
    map(AP, '0x2000'),
    tc('ACCESS_PAGES', { errno: 'ENOMEM' }, { id: '$afd', iova: AP, length: '0x1000001' }),
    tc('ACCESS_PAGES', { errno: 'EOPNOTSUPP' }, { id: '$afd', iova: AP, length: '0x1000', flags: 2 }),
    tc('ACCESS_PAGES', { errno: 'EBADFD' }, { id: '$fd', iova: AP, length: '0x1000' }),
    tc('ACCESS_PAGES', { errno: 'EBADFD' }, { id: 99, iova: AP, length: '0x1000' }),
    tc('ACCESS_PAGES', { errno: 'EOPNOTSUPP' }, { id: '$afd', iova: AP, length: '0x1000' }),
  ]));
});

test('ACCESS_PAGES (iommufd_access_pin_pages): EINVAL, EOVERFLOW, ENOENT holes, EINVAL alignment, EPERM, EBADE; pins single', () => {
  const r = runTrace('selftest-mock', [
    ...withAccess(),
    map(AP, '0x2000'),
    map('0x1002000', '0x1000', { flags: ['FIXED_IOVA', 'READABLE'] }),
    map('0x1004000', '0x1000', { flags: ['FIXED_IOVA', 'WRITEABLE'] }),
    tc('ACCESS_PAGES', { errno: 'EINVAL' }, { id: '$afd', iova: AP, length: 0 }),
    tc('ACCESS_PAGES', { errno: 'EOVERFLOW' }, { id: '$afd', iova: '0xfffffffffffff000', length: '0x2000' }),
    tc('ACCESS_PAGES', { errno: 'ENOENT' }, { id: '$afd', iova: '0x2000000', length: '0x1000' }),
    tc('ACCESS_PAGES', { errno: 'ENOENT' }, { id: '$afd', iova: AP, length: '0x4000' }),
    tc('ACCESS_PAGES', { errno: 'EINVAL' }, { id: '$afd', iova: '0x1000800', length: '0x800' }),
    tc('ACCESS_PAGES', { errno: 'EPERM' }, { id: '$afd', iova: '0x1002000', length: '0x1000', flags: ['WRITE'] }),
    tc('ACCESS_PAGES', { errno: 'EPERM' }, { id: '$afd', iova: '0x1004000', length: '0x1000' }),
    tc('ACCESS_PAGES', { ok: true, out_access_pages_id: 0 }, { id: '$afd', iova: AP, length: '0x2000', uptr: '$buf' }),
    // The next page of IOVA is the buffer's first page again (a second MAP of it): not the page behind uptr.
    tc('ACCESS_PAGES', { errno: 'EBADE' }, { id: '$afd', iova: '0x1001000', length: '0x2000', uptr: '$buf' }),
    tc('ACCESS_PAGES', { ok: true, out_access_pages_id: 1 }, { id: '$afd', iova: '0x1004000', length: '0x1000', flags: ['WRITE'] }),
    // Page 0 is pinned by two pages objects (two MAPs), page 1 by one: single pin per pages object.
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x1000', refs: 2 }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '0x100001000', length: '0x1000', refs: 1 }),
    tc('ACCESS_PAGES', { ok: true, out_access_pages_id: 2 }, { id: '$afd', iova: AP, length: '0x1000' }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x1000', refs: 2 }),
    tc('DESTROY_ACCESS_PAGES', { ok: true }, { id: '$afd', access_pages_id: 0 }),
    tc('DESTROY_ACCESS_PAGES', { errno: 'ENOENT' }, { id: '$afd', access_pages_id: 0 }),
    tc('DESTROY_ACCESS_PAGES', { errno: 'EBADFD' }, { id: 77, access_pages_id: 1 }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '0x100001000', length: '0x1000', refs: 0 }),
    tc('DESTROY_ACCESS_PAGES', { ok: true }, { id: '$afd', access_pages_id: 1 }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x1000', refs: 1 }),
    { op: 'close', fd: '$afd', expect: { ok: true } },
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x10000', refs: 0 }),
  ]);
  ok(r);
  assert.is(r.world.users[1000]!.lockedPages, 0);
});

test('ACCESS_RW: ENOMEM, EOPNOTSUPP, EBADFD, EFAULT on the user buffer, EPERM, ENOENT, EINVAL; no pin kept', () => {
  ok(runTrace('selftest-mock', [
    ...withAccess(0),
    map(AP, '0x2000', { flags: ['FIXED_IOVA', 'READABLE'] }),
    { op: 'mmap', length: '0x1000', expect: { ok: true, addr: '$tmp' } },
    tc('ACCESS_RW', { errno: 'ENOMEM' }, { id: '$afd', iova: AP, length: '0x1000001', uptr: '$tmp' }),
    tc('ACCESS_RW', { errno: 'EOPNOTSUPP' }, { id: '$afd', iova: AP, length: 8, uptr: '$tmp', flags: 2 }),
    tc('ACCESS_RW', { errno: 'EBADFD' }, { id: 55, iova: AP, length: 8, uptr: '$tmp' }),
    tc('ACCESS_RW', { errno: 'EFAULT' }, { id: '$afd', iova: AP, length: 8, uptr: '0x10', flags: ['WRITE'] }),
    tc('ACCESS_RW', { errno: 'EPERM' }, { id: '$afd', iova: AP, length: 8, uptr: '$tmp', flags: ['WRITE'] }),
    tc('ACCESS_RW', { errno: 'ENOENT' }, { id: '$afd', iova: '0x1001ffc', length: 8, uptr: '$tmp' }),
    tc('ACCESS_RW', { errno: 'EINVAL' }, { id: '$afd', iova: AP, length: 0, uptr: '$tmp' }),
    tc('ACCESS_RW', { errno: 'EFAULT' }, { id: '$afd', iova: AP, length: 8, uptr: '0x10' }),
    tc('ACCESS_RW', { ok: true }, { id: '$afd', iova: '0x1000ffd', length: 7, uptr: '$tmp' }),
    tc('MD_CHECK_REFS', { ok: true }, { uptr: '$buf', length: '0x2000', refs: 0 }),
  ]));
});

test('ACCESS_REPLACE_IOAS: ENOENT target, pins dropped, alignment moves with the access', () => {
  const r = runTrace('selftest-mock', [
    ...withAccess(),
    map(AP, '0x2000'),
    { op: 'IOMMU_IOAS_ALLOC', fd: '$fd', expect: { ok: true, out_ioas_id: '$ioas2' } },
    tc('ACCESS_PAGES', { ok: true, out_access_pages_id: '$it' }, { id: '$afd', iova: AP, length: '0x1000' }),
    tc('ACCESS_REPLACE_IOAS', { errno: 'ENOENT' }, { id: '$afd', ioas_id: 99 }),
    tc('ACCESS_REPLACE_IOAS', { errno: 'EBADFD' }, { id: '$fd', ioas_id: '$ioas2' }),
    tc('ACCESS_REPLACE_IOAS', { ok: true }, { id: '$afd', ioas_id: '$ioas' }),
    tc('ACCESS_REPLACE_IOAS', { ok: true }, { id: '$afd', ioas_id: '$ioas2' }),
    tc('DESTROY_ACCESS_PAGES', { errno: 'ENOENT' }, { id: '$afd', access_pages_id: '$it' }),
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$fd', ioas_id: '$ioas', num_iovas: 1, expect: { ok: true, out_iova_alignment: 1 } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$fd', ioas_id: '$ioas2', num_iovas: 1, expect: { ok: true, out_iova_alignment: 4096 } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$ioas', expect: { ok: true } },
  ]);
  ok(r);
  assert.is(r.world.users[1000]!.lockedPages, 0);
});

test('UNMAP notifies every access of the IOAS; closing the iommufd waits for the access fd', () => {
  const r = runTrace('selftest-mock', [
    ...withAccess(),
    tc('CREATE_ACCESS', { ok: true, out_access_fd: '$afd2' }, { id: '$ioas', flags: ['NEEDS_PIN_PAGES'] }),
    map(AP, '0x2000'),
    map('0x1002000', '0x2000'),
    tc('ACCESS_PAGES', { ok: true, out_access_pages_id: '$a' }, { id: '$afd', iova: '0x1001000', length: '0x2000' }),
    tc('ACCESS_PAGES', { ok: true, out_access_pages_id: '$b' }, { id: '$afd2', iova: '0x1003000', length: '0x1000' }),
    { op: 'IOMMU_IOAS_UNMAP', fd: '$fd', ioas_id: '$ioas', iova: AP, length: '0x2000', expect: { ok: true, length: '0x2000' } },
    tc('DESTROY_ACCESS_PAGES', { errno: 'ENOENT' }, { id: '$afd', access_pages_id: '$a' }),
    tc('DESTROY_ACCESS_PAGES', { ok: true }, { id: '$afd2', access_pages_id: '$b' }),
    tc('ACCESS_PAGES', { ok: true }, { id: '$afd2', iova: '0x1003000', length: '0x1000' }),
    { op: 'IOMMU_IOAS_UNMAP', fd: '$fd', ioas_id: '$ioas', iova: 0, length: '0xffffffffffffffff', expect: { ok: true, length: '0x2000' } },
    { op: 'close', fd: '$fd', expect: { ok: true } },
  ]);
  ok(r);
  assert.is(Object.keys(r.world.ctxs).length, 1, 'the access fds keep the ctx');
  const r2 = runTrace('selftest-mock', [{ op: 'close', fd: 4, expect: { ok: true } }, { op: 'close', fd: 5, expect: { ok: true } }], r.world);
  ok(r2);
  assert.is(Object.keys(r2.world.ctxs).length, 0);
});

test('EDEADLOCK (model level): an access driver that keeps its pins makes UNMAP fail, areas before it stay unmapped', () => {
  const r = runTrace('selftest-mock', [
    ...withAccess(),
    map(AP, '0x1000'),
    map('0x1001000', '0x1000'),
    tc('ACCESS_PAGES', { ok: true }, { id: '$afd', iova: '0x1001000', length: '0x1000' }),
  ]);
  ok(r);
  // No trace operation makes a driver ignore unmap notifications; flip the switch directly.
  const buggy = produce(r.world, (d) => {
    const ctx = Object.values(d.ctxs)[0]!;
    (Object.values(ctx.objects).find((o) => o.type === 'access') as AccessObj & { keepsPins: boolean }).keepsPins = true;
  });
  const r2 = runTrace('selftest-mock', [
    { op: 'IOMMU_IOAS_UNMAP', fd: 3, ioas_id: 1, iova: AP, length: '0x2000', expect: { errno: 'EDEADLOCK' } },
    { op: 'IOMMU_IOAS_UNMAP', fd: 3, ioas_id: 1, iova: AP, length: '0x1000', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_TEST_CMD', fd: 3, test_op: 'DESTROY_ACCESS_PAGES', id: 4, access_pages_id: 0, expect: { ok: true } },
    { op: 'IOMMU_IOAS_UNMAP', fd: 3, ioas_id: 1, iova: AP, length: '0x2000', expect: { ok: true, length: '0x1000' } },
  ], buggy);
  ok(r2);
});

test('VFIO emulated device: bind creates an ACCESS; attach to an IOAS only (ENOENT for HWPT), replace, detach, close', () => {
  const r = runTrace({ iommus: [{ name: 'mock', format: 'mock' }], selftest: true }, [
    T.dev('mdev0', 1, { flags: ['EMULATED'] }), T.vfio('mdev0'), T.iommufd('$fd'), T.cdev('mdev0', '$dfd'),
    T.ioas('$fd', '$A'), T.ioas('$fd', '$B'),
    T.bind('$dfd', '$fd', '$acc'),
    { op: 'IOMMU_TEST_CMD', fd: '$fd', test_op: 'MOCK_DOMAIN', id: '$A', expect: { ok: true, out_hwpt_id: '$H' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$H', expect: { errno: 'ENOENT' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: 99, expect: { errno: 'ENOENT' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { ok: true, pt_id: '$A' } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$B', expect: { ok: true } },
    T.ioas('$fd', '$B'),
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$B', expect: { ok: true, pt_id: '$B' } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$B', expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$fd', ioas_id: '$B', num_iovas: 1, expect: { ok: true, out_iova_alignment: 4096 } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$fd', id: '$B', expect: { ok: true } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { ok: true, pt_id: '$A' } },
    { op: 'close', fd: '$dfd', expect: { ok: true } },
    { op: 'IOMMU_IOAS_IOVA_RANGES', fd: '$fd', ioas_id: '$A', num_iovas: 1, expect: { ok: true, out_iova_alignment: 2048 } },
  ]);
  ok(r);
});

test('DIRTY: errno order (args, HWPT, mock, tracking, EFAULT); set bits dirty their leaves; count includes unmapped', () => {
  const bm = { op: 'mmap', addr: '0x300000000', length: '0x1000', flags: ['SHARED'], expect: { ok: true } };
  const dirty = (expect: Record<string, unknown>, f: Record<string, unknown> = {}) =>
    tc('DIRTY', expect, { id: '$dh', iova: AP, length: '0x4000', page_size: '0x800', uptr: '0x300000000', ...f });
  const get = (bitmap: string, flags: string[] = []) => ({
    op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', fd: '$fd', hwpt_id: '$dh', flags, iova: AP, length: '0x4000', page_size: '0x800', data: '0x300000000', expect: { ok: true, bitmap },
  });
  const r = runTrace('selftest-mock', [
    ...base, bm,
    tc('MOCK_DOMAIN', { ok: true, out_hwpt_id: '$h', out_idev_id: '$i' }, { id: '$ioas' }),
    map(AP, '0x3000'),
    { op: 'IOMMU_HWPT_ALLOC', fd: '$fd', dev_id: '$i', pt_id: '$ioas', flags: ['DIRTY_TRACKING'], expect: { ok: true, out_hwpt_id: '$dh' } },
    dirty({ errno: 'EINVAL' }, { page_size: 0 }),
    dirty({ errno: 'EINVAL' }, { length: 0 }),
    dirty({ errno: 'EINVAL' }, { iova: '0x1000400' }),
    dirty({ errno: 'EINVAL' }, { length: '0x4400' }),
    dirty({ errno: 'EINVAL' }, { uptr: 0 }),
    dirty({ errno: 'ENOENT' }, { id: '$ioas' }),
    dirty({ errno: 'ENOENT' }, { id: 99 }),
    dirty({ errno: 'EINVAL' }), // tracking is off
    { op: 'IOMMU_HWPT_SET_DIRTY_TRACKING', fd: '$fd', hwpt_id: '$dh', flags: ['ENABLE'], expect: { ok: true } },
    dirty({ errno: 'EFAULT' }, { uptr: '0x400000000' }),
    // bits 0, 2 and 7: the last one is beyond the 0x3000 mapped, counted but not marked
    dirty({ ok: true, out_nr_dirty: 3 }, { dirty_bitmap: '0x85' }),
    get('0x5', ['NO_CLEAR']),
    get('0x5'),
    get('0x0'),
    // bits beyond length / page_size are not read
    dirty({ ok: true, out_nr_dirty: 1 }, { length: '0x800', dirty_bitmap: '0xff' }),
    get('0x1'),
  ]);
  ok(r);
});

test.run();

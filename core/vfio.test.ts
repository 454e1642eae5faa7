// Errno rules of the VFIO device cdev: bind, attach, detach, unbind on close
// (kernel-semantics.md §4, §6.2-6.6).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { T, runTrace } from '../test/kit.js';

const ok = (r: { divergences: string[] }) => assert.equal(r.divergences, []);
const setup1 = [T.dev('0000:01:00.0', 1), T.vfio('0000:01:00.0'), T.iommufd('$ifd'), T.cdev('0000:01:00.0', '$dfd')];

test('1:1 lifecycle: bind, attach to IOAS (auto HWPT), detach, close', () => {
  const r = runTrace('x86-vtd', [
    ...setup1,
    T.ioas('$ifd', '$A'),
    T.bind('$dfd', '$ifd', '$D'),
    { op: 'dma', dev: '0000:01:00.0', iova: '0x1000', length: 4, dir: 'read', expect: { fault: 'blocked' } },
    T.attach('$dfd', '$A', '$H'),
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$H', expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { errno: 'EBUSY' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$D', expect: { errno: 'EBUSY' } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$H', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { ok: true } },
    { op: 'close', fd: '$dfd', expect: { ok: true } },
    { op: 'driver_probe', dev: '0000:01:00.0', driver: 'e1000e', expect: { errno: 'EBUSY' } },
  ]);
  ok(r);
  assert.is(r.vars.get('$A'), 1);
  assert.is(r.vars.get('$D'), 2);
  assert.is(r.vars.get('$H'), 3);
});

test('bind checks in kernel order: flags, iommufd < 0, bound twice, EBADF, EBADFD', () => {
  ok(runTrace('x86-vtd', [
    ...setup1,
    { op: 'memfd_create', length: 4096, expect: { ok: true, fd: '$m' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: '$ifd', flags: 1, expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: -1, expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: 99, expect: { errno: 'EBADF' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: '$m', expect: { errno: 'EBADFD' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: '$ifd', argsz: 8, expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: '$ifd', argp: null, expect: { errno: 'EFAULT' } },
    T.bind('$dfd', '$ifd', '$D'),
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: '$ifd', expect: { errno: 'EINVAL' } },
  ]));
});

test('a cdev is bound by at most one fd; access is granted only after bind', () => {
  ok(runTrace('x86-vtd', [
    ...setup1,
    T.ioas('$ifd', '$A'),
    T.cdev('0000:01:00.0', '$dfd2'),
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$dfd', expect: { errno: 'EINVAL' } },
    T.bind('$dfd', '$ifd', '$D'),
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd2', iommufd: '$ifd', expect: { errno: 'EINVAL' } },
    { op: 'IOMMU_IOAS_ALLOC', fd: '$dfd', expect: { errno: 'ENOTTY' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$ifd', iommufd: '$ifd', expect: { errno: 'ENOTTY' } },
  ]));
});

test('device flags: non-coherent IOMMU EINVAL, unsafe MSI EPERM, require-direct EINVAL', () => {
  ok(runTrace('x86-vtd', [
    T.dev('a', 1, { flags: ['NON_COHERENT'] }), T.vfio('a'),
    T.dev('b', 2, { flags: ['UNSAFE_MSI'] }), T.vfio('b'),
    T.dev('c', 3, { flags: ['REQUIRE_DIRECT'] }), T.vfio('c'),
    T.iommufd('$ifd'), T.cdev('a', '$a'), T.cdev('b', '$b'), T.cdev('c', '$c'),
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$a', iommufd: '$ifd', expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$b', iommufd: '$ifd', expect: { errno: 'EPERM' } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$c', iommufd: '$ifd', expect: { errno: 'EINVAL' } },
  ]));
});

test('1:N group: a group-mate with a DMA-API driver makes the group non-viable (EPERM)', () => {
  const r = runTrace('x86-vtd', [
    T.dev('0000:01:00.0', 7), T.dev('0000:01:00.1', 7),
    T.vfio('0000:01:00.0'),
    { op: 'driver_probe', dev: '0000:01:00.1', driver: 'nvme', expect: { ok: true } },
    T.iommufd('$ifd'), T.cdev('0000:01:00.0', '$dfd'),
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: '$dfd', iommufd: '$ifd', expect: { errno: 'EPERM' } },
    { op: 'driver_remove', dev: '0000:01:00.1', expect: { ok: true } },
    T.bind('$dfd', '$ifd', '$D'),
    { op: 'driver_probe', dev: '0000:01:00.1', driver: 'nvme', expect: { errno: 'EBUSY' } },
    { op: 'driver_probe', dev: '0000:01:00.1', driver: 'pci-stub', expect: { ok: true } },
  ]);
  ok(r);
  const reason = r.outcomes[6]!;
  assert.ok(reason.kind === 'errno' && reason.reason.includes('0000:01:00.1 is bound to nvme'), JSON.stringify(reason));
});

test('1:N group: both devices share one domain; a group-mate on another page table is EINVAL', () => {
  const r = runTrace('x86-vtd', [
    T.dev('a', 7), T.dev('b', 7), T.vfio('a'), T.vfio('b'),
    T.iommufd('$ifd'), T.cdev('a', '$a'), T.cdev('b', '$b'),
    T.ioas('$ifd', '$A1'), T.ioas('$ifd', '$A2'),
    T.bind('$a', '$ifd', '$Da'), T.bind('$b', '$ifd', '$Db'),
    T.attach('$a', '$A1', '$H1'),
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$b', pt_id: '$A2', expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$b', pt_id: '$A1', expect: { ok: true, pt_id: '$H1' } },
    // a detached device keeps translating while its group-mate is attached
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$a', expect: { ok: true } },
    { op: 'dma', dev: 'a', iova: '0x1000', length: 4, dir: 'read', expect: { fault: 'not_present' } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$b', expect: { ok: true } },
    { op: 'dma', dev: 'a', iova: '0x1000', length: 4, dir: 'read', expect: { fault: 'blocked' } },
  ]);
  ok(r);
});

test('a second iommufd cannot claim a group owned by the first (EPERM)', () => {
  ok(runTrace('x86-vtd', [
    T.dev('a', 7), T.dev('b', 7), T.vfio('a'), T.vfio('b'),
    T.iommufd('$i1'), { op: 'open', pid: 2, path: '/dev/iommu', expect: { ok: true, fd: '$i2' } },
    T.cdev('a', '$a'), T.cdev('b', '$b', 2),
    T.bind('$a', '$i1', '$Da'),
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', pid: 2, fd: '$b', iommufd: '$i2', expect: { errno: 'EPERM' } },
    { op: 'close', fd: '$a', expect: { ok: true } },
    { op: 'VFIO_DEVICE_BIND_IOMMUFD', pid: 2, fd: '$b', iommufd: '$i2', expect: { ok: true, out_devid: 1 } },
  ]));
});

test('attach: ENOENT for a missing pt_id, EINVAL for a device ID, replace, and flags', () => {
  ok(runTrace('x86-vtd', [
    ...setup1, T.ioas('$ifd', '$A'), T.ioas('$ifd', '$B'), T.bind('$dfd', '$ifd', '$D'),
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: 99, expect: { errno: 'ENOENT' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$D', expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', flags: 1, expect: { errno: 'EINVAL' } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', argsz: 8, expect: { errno: 'EINVAL' } },
    T.attach('$dfd', '$A', '$H1'),
    // replace onto another IOAS: new auto HWPT, the old one is freed
    T.attach('$dfd', '$B', '$H2'),
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$H1', expect: { errno: 'ENOENT' } },
    { op: 'IOMMU_DESTROY', fd: '$ifd', id: '$A', expect: { ok: true } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
  ]));
});

test('auto domain reuse: two devices on one IOAS share the auto HWPT; incompatible ones get their own', () => {
  ok(runTrace('x86-vtd', [
    T.dev('a', 1), T.dev('b', 2), T.dev('c', 3, { flags: ['NO_ENFORCE_COHERENCY'] }),
    T.vfio('a'), T.vfio('b'), T.vfio('c'),
    T.iommufd('$ifd'), T.cdev('a', '$a'), T.cdev('b', '$b'), T.cdev('c', '$c'),
    T.ioas('$ifd', '$A'),
    T.bind('$a', '$ifd', '$Da'), T.bind('$b', '$ifd', '$Db'), T.bind('$c', '$ifd', '$Dc'),
    T.attach('$a', '$A', '$H'),
    T.attach('$b', '$A', '$H'),
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$c', pt_id: '$A', expect: { ok: true, pt_id: 6 } },
  ]));
});

test('closing the iommufd first is harmless: the bound device keeps the ctx alive', () => {
  ok(runTrace('x86-vtd', [
    ...setup1, T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
    { op: 'close', fd: '$ifd', expect: { ok: true } },
    { op: 'dma', dev: '0000:01:00.0', iova: '0x1000', length: 4, dir: 'read', expect: { fault: 'not_present' } },
    { op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: '$dfd', expect: { ok: true } },
    { op: 'close', fd: '$dfd', expect: { ok: true } },
    { op: 'driver_remove', dev: '0000:01:00.0', expect: { ok: true } },
    { op: 'driver_probe', dev: '0000:01:00.0', driver: 'e1000e', expect: { ok: true } },
  ]));
});

test('exit closes every fd: the group returns to its default domain', () => {
  const r = runTrace('x86-vtd', [
    ...setup1, T.ioas('$ifd', '$A'), T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
    { op: 'exit', expect: { ok: true } },
  ]);
  ok(r);
  assert.equal(r.world.groups[1]!.domain, { kind: 'default' });
  assert.equal(r.world.ctxs, {});
  assert.equal(r.world.procs, {});
});

test('device_remove while a VFIO user holds the device is pending until the last fd closes', () => {
  const r = runTrace('x86-vtd', [
    ...setup1, T.bind('$dfd', '$ifd', '$D'),
    { op: 'device_remove', dev: '0000:01:00.0', expect: { pending: true } },
    // vfio_device_del removed the cdev node before the wait: new opens find nothing
    { op: 'open', dev: '0000:01:00.0', expect: { errno: 'ENOENT' } },
    { op: 'open', path: '/dev/vfio/devices/vfio0', expect: { errno: 'ENOENT' } },
    { op: 'close', fd: '$dfd', expect: { ok: true } },
    { op: 'open', dev: '0000:01:00.0', expect: { errno: 'ENOENT' } },
  ]);
  ok(r);
  assert.equal(r.world.devices, {});
});

test('failed operations change nothing (same World object)', () => {
  const base = runTrace('x86-vtd', [...setup1]);
  const again = runTrace('x86-vtd', [{ op: 'VFIO_DEVICE_BIND_IOMMUFD', fd: 4, iommufd: 99, expect: { errno: 'EBADF' } }], base.world);
  assert.is(again.world, base.world);
});

test.run();

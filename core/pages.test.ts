// pages.ts: the pages objects behind areas, their pin users, pinned runs and charge,
// as MAP, COPY and UNMAP leave them (single pin, charge = pages pinned, freed at 0 refs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { produce } from 'immer';
import { T, runTrace } from '../test/kit.js';
import { npinned, physOf, unrefPages, type Pages, type PagesTable } from './pages.js';
import type { World } from './world.js';

const ok = (r: { divergences: string[] }) => assert.equal(r.divergences, []);
const MiB = 1024 * 1024;
const attached = [
  T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'),
  T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
  T.ioas('$ifd', '$B'),
  { op: 'mmap', length: 4 * MiB, expect: { ok: true, addr: '$buf' } },
];
const map = (iova: string, length: number, ioas = '$A') => ({
  op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: ioas, flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length, iova,
});
const unmap = (iova: string, length: number, ioas = '$A') => ({ op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: ioas, iova, length });
const copy = (src: string, dst: string, length: number, dstIoas = '$B') => ({
  op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: dstIoas, src_ioas_id: '$A', length, src_iova: src, dst_iova: dst,
});

const pagesOf = (w: World): Pages[] => [...(Object.values(w.ctxs)[0]!.pages as PagesTable).values()];

test('MAP into an IOAS with a domain stores one pages object, pinned whole for its one area user', () => {
  const r = runTrace('x86-vtd', [...attached, { ...map('0x100000', 1 * MiB), expect: { ok: true } }]);
  ok(r);
  const [p, ...more] = pagesOf(r.world);
  assert.is(more.length, 0);
  assert.is(p!.areas, 1);
  assert.equal(p!.users, [{ key: 'a:1:100000', first: 0, last: 255 }]);
  assert.is(npinned(p!), 256);
  assert.is(r.world.users[1000]!.lockedPages, 256);
});

test('MAP into an IOAS without domains stores its pages object unpinned', () => {
  const r = runTrace('x86-vtd', [...attached, { ...map('0x100000', 1 * MiB, '$B'), expect: { ok: true } }]);
  ok(r);
  const [p] = pagesOf(r.world);
  assert.is(p!.areas, 1);
  assert.equal(p!.users, []);
  assert.equal(p!.pinned, []);
  assert.is(r.world.users[1000]?.lockedPages ?? 0, 0);
});

test('UNMAP of an area sharing its pages (COPY) keeps the pins other users need, then the last frees all', () => {
  const steps: Record<string, unknown>[] = [
    ...attached,
    { ...map('0x100000', 1 * MiB), expect: { ok: true } },
    // Into an IOAS without domains: a second reference, no second user.
    { ...copy('0x100000', '0x900000', 1 * MiB), expect: { ok: true } },
    // Within the same IOAS: a second reference and a second user over pages 16..31.
    { ...copy('0x110000', '0x2000000', 64 * 1024, '$A'), expect: { ok: true } },
  ];
  let r = runTrace('x86-vtd', steps);
  ok(r);
  let [p] = pagesOf(r.world);
  assert.is(p!.areas, 3);
  assert.is(p!.users.length, 2);
  assert.is(r.world.users[1000]!.lockedPages, 256);

  steps.push({ ...unmap('0x100000', 1 * MiB), expect: { ok: true } });
  r = runTrace('x86-vtd', steps);
  ok(r);
  [p] = pagesOf(r.world);
  assert.is(p!.areas, 2);
  assert.equal(p!.users.map((u) => [u.first, u.last]), [[16, 31]]);
  assert.is(npinned(p!), 16);
  assert.is(r.world.users[1000]!.lockedPages, 16);

  steps.push({ ...unmap('0x2000000', 64 * 1024), expect: { ok: true } });
  r = runTrace('x86-vtd', steps);
  ok(r);
  [p] = pagesOf(r.world);
  assert.is(p!.areas, 1);
  assert.equal(p!.pinned, []);
  assert.is(r.world.users[1000]!.lockedPages, 0);
  assert.is(r.world.mem.pins.size, 0);

  steps.push({ ...unmap('0x900000', 1 * MiB, '$B'), expect: { ok: true } });
  r = runTrace('x86-vtd', steps);
  ok(r);
  assert.is(pagesOf(r.world).length, 0);
});

test('releasing an area whose pin user is not on its pages is a model error, sole user or not', () => {
  const r = runTrace('x86-vtd', [...attached, { ...map('0x100000', 1 * MiB), expect: { ok: true } }]);
  ok(r);
  const [p] = pagesOf(r.world);
  assert.throws(() => produce(r.world, (d) => unrefPages(d, 1, p!.id, 'a:1:200000')), /pin user a:1:200000 not on pages/);
  assert.throws(() => produce(r.world, (d) => unrefPages(d, 1, p!.id, null)), /released with pins/);
  const w = produce(r.world, (d) => unrefPages(d, 1, p!.id, 'a:1:100000'));
  assert.is(pagesOf(w).length, 0);
  assert.is(w.users[1000]!.lockedPages, 0);
});

test('a MAP whose memory cannot be pinned fails EFAULT and leaves no pages object or pin', () => {
  const r = runTrace('x86-vtd', [
    ...attached,
    { ...map('0x100000', 1 * MiB), expect: { ok: true } },
    { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '0x5000000000', length: 1 * MiB, iova: '0x800000', expect: { errno: 'EFAULT' } },
  ]);
  ok(r);
  assert.is(pagesOf(r.world).length, 1);
  assert.is(r.world.users[1000]!.lockedPages, 256);
});

test('a MAP refused over RLIMIT_MEMLOCK adds nothing to the shared pin log (the next pin appends, never copies it)', () => {
  // The log is shared along one history (core/mem.ts): entries a refused MAP left past
  // the World's count would make every later pin copy the whole log, and every kept
  // World its own copy. Charging before pinning keeps them out.
  const r = runTrace('x86-vtd', [
    ...attached,
    { op: 'setrlimit', memlock: 1 * MiB, expect: { ok: true } },
    { ...map('0x100000', 4096), expect: { ok: true } },
    { ...map('0x200000', 2 * MiB), expect: { errno: 'ENOMEM' } },
  ]);
  ok(r);
  const mem = r.world.mem as unknown as { pinLog: { end: number }; pinCount: number };
  assert.is(mem.pinCount, 1);
  assert.is(mem.pinLog.end, mem.pinCount);
});

test('any failed step leaves no pins of its own in the shared pin log: an attach refused after pinning one area', () => {
  // d0 pins one page into $A's domain (the log has one entry); the attach of d1 to $B
  // pins $B's first area, then its second is refused (ENOMEM): core/step.ts drops what
  // the failed step logged (Memory.forgetFailedPins), so the log ends at the World's count.
  const r = runTrace('x86-vtd', [
    ...attached,
    T.dev('d1', 2), T.vfio('d1'), T.cdev('d1', '$dfd1'), T.bind('$dfd1', '$ifd', '$D1'),
    { op: 'setrlimit', memlock: 1 * MiB, expect: { ok: true } },
    { ...map('0x100000', 4096), expect: { ok: true } },
    { ...map('0x100000', 512 * 1024, '$B'), expect: { ok: true } },
    { ...map('0x200000', 1 * MiB, '$B'), expect: { ok: true } },
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd1', pt_id: '$B', expect: { errno: 'ENOMEM' } },
  ]);
  ok(r);
  const mem = r.world.mem as unknown as { pinLog: { end: number }; pinCount: number };
  assert.is(mem.pinCount, 1);
  assert.is(mem.pinLog.end, 1);
  assert.is(r.world.users[1000]!.lockedPages, 1);
});

test('physOf: IOVA -> PA runs of a byte range, clipped to it, the same whether offsets fit in a number or not', () => {
  const pinned = [{ first: 0, last: 1, pa: 0x10_0000_0000n }, { first: 2, last: 4, pa: 0x20_0000_0000n }, { first: 7, last: 7, pa: 0x30_0000_0000n }];
  const small: Pages = { id: 1, pid: 1, serial: 1, uid: 1000, va: 0x4000_0000n, npages: 8, writable: true, account: 'none', memlock: 0n, areas: 1, users: [], pinned };
  const want = [
    { iova: 0x9000n, pa: 0x10_0000_0800n, length: 0x1800n },
    { iova: 0xa800n, pa: 0x20_0000_0000n, length: 0x1100n },
  ];
  assert.equal(physOf(small, 4096n, 0x800n, 0x2900n, 0x9000n), want);
  // 2^45 pages: byte offsets past 2^53, so the bigint path; the same runs for the same bytes.
  assert.equal(physOf({ ...small, npages: 2 ** 45 }, 4096n, 0x800n, 0x2900n, 0x9000n), want);
  assert.equal(physOf(small, 4096n, 0x7000n, 0x1000n, 0n), [{ iova: 0n, pa: 0x30_0000_0000n, length: 0x1000n }]);
});

test.run();

/*
 * selftest.ts: IOMMU_TEST_CMD, the kernel selftest's backdoor ioctl on an iommufd
 * (drivers/iommu/iommufd/selftest.c, CONFIG_IOMMUFD_TEST), so that the selftests of
 * tools/testing/selftests/iommu can be written as traces. Only the `selftest-mock`
 * platform has it; elsewhere the ioctl number is unknown (ENOTTY).
 *
 * - MOCK_DOMAIN / MOCK_DOMAIN_FLAGS: a mock device in a group of its own on the mock
 *   IOMMU, bound to this iommufd and attached to `id`. IDs come in the kernel's
 *   order: the SELFTEST object first (reserved before anything else), then the
 *   DEVICE (bind), then an automatic HWPT (attach to an IOAS). Destroying the
 *   SELFTEST object (IOMMU_DESTROY, or closing the iommufd) detaches, unbinds and
 *   removes the mock device. Mock devices hold no reference on the iommufd file.
 * - ACCESS ops name the access by its fd (`id`), as the selftest does; a bad fd is
 *   EBADFD. The mock access driver unpins its items when an UNMAP notifies it.
 * - MD_CHECK_MAP reads the simulated page tables; MD_CHECK_REFS counts long-term pins
 *   on the frames behind the user range (hugetlb pages are compound: skipped).
 *
 * - DIRTY: marks IOVAs dirty in a mock domain whose dirty tracking is on, as the mock
 *   driver's set_dirty does: bit i of the user bitmap at `uptr` (its bytes given by the
 *   trace as `dirty_bitmap`, the model keeps no memory contents) dirties the leaf that
 *   translates iova + i * page_size, so a huge leaf becomes dirty as a whole;
 *   `out_nr_dirty` counts the set bits, mapped or not. The dirty bit is set directly in
 *   the simulated page table (hwMarkDirty), read-only leaves included, as set_dirty
 *   does; unmapped IOVAs are skipped as set_dirty skips them.
 *
 * Not modelled: the PASID ops, fault injection, and the SYZ flag (iova given as nth
 * area + offset): those answer EOPNOTSUPP with a reason.
 */
import type { Draft } from 'immer';
import { TEST_OPS, U64_MAX, fail, isOutcome, ok, type DeviceFlag, type InputOf, type Outcome } from '../events/index.js';
import { checkReserve, fmtRange } from './iopt/index.js';
import type { IoasData } from './ioasData.js';
import type { Ctx, DeviceObj, HwptPagingObj, OpenFile, SelftestObj, World } from './world.js';
import { iommufdPrologue, lookupFd } from './ioctl.js';
import { releaseCtx } from './ctx.js';
import { allocId } from './objects.js';
import { addDevice } from './device.js';
import { claimDmaOwner, releaseDmaOwner } from './ownership.js';
import { deviceAttach, deviceDetach, deviceReplace } from './attach.js';
import { hwFreeDomain, hwMarkDirty, hwSetContext, hwWalk } from './hwsync.js';
import { getDomain, type HwState } from '../hw/index.js';
import { memOf, touch, vmaAt, type PageExtent } from './mem.js';
import { newFile } from './files.js';
import { getPages } from './pages.js';
import { accessAttach, accessDestroy, accessOf, accessPin, accessReplace, accessRw, accessUnpinItem } from './access.js';

const hex = (n: bigint) => `0x${n.toString(16)}`;
/** MOCK_IO_PAGE_SIZE: PAGE_SIZE / 2. */
const mockPage = (d: Draft<World>) => d.platform.pageSize / 2n;
const DEV_FLAG: Readonly<Record<number, DeviceFlag>> = { 1: 'NO_DIRTY_TRACKING', 2: 'HUGE_IOVA', 4: 'PASID' };
const VALID_DEV_FLAGS = 1 | 2 | 4;
const ACCESS_WRITE = 1, ACCESS_SLOW_PATH = 4, ACCESS_SYZ = 0x10000, NEEDS_PIN_PAGES = 1;
/** The selftest refuses bigger ACCESS_PAGES / ACCESS_RW lengths (kvzalloc guard). */
const MAX_ACCESS_LENGTH = 16n * 1024n * 1024n;

type TestIn = InputOf<'IOMMU_TEST_CMD'>;
type AccessFile = Extract<OpenFile, { kind: 'test-access' }>;

function lowestFree(taken: (n: number) => boolean, from = 0): number {
  let n = from;
  while (taken(n)) n++;
  return n;
}

/** Removes a mock device from the platform (mock_dev_destroy); its group goes with it. */
function removeMockDevice(d: Draft<World>, name: string): void {
  const dev = d.devices[name]!;
  const g = d.groups[dev.group]!;
  g.devices = g.devices.filter((n) => n !== name);
  hwSetContext(d, dev.unit, name, null);
  delete d.devices[name];
  if (g.devices.length === 0 && g.ownerCnt === 0) {
    hwFreeDomain(d, g.unit, g.defaultDomain);
    delete d.groups[g.id];
  }
}

/** iommufd_selftest_destroy: detach, unbind, destroy the mock device. Cannot fail. */
export function destroyStdev(d: Draft<World>, ctxId: number, id: number): void {
  const ctx = d.ctxs[ctxId]!;
  const s = ctx.objects[id] as Draft<SelftestObj>;
  const idev = ctx.objects[s.idev] as Draft<DeviceObj>;
  if (idev.attached !== null) deviceDetach(d, ctxId, idev.id);
  delete ctx.objects[idev.id];
  const group = d.devices[s.dev]!.group;
  releaseDmaOwner(d, group);
  const ig = ctx.igroups[group];
  if (ig && ig.hwpt === null && !Object.values(ctx.objects).some((o) => o.type === 'device' && o.group === group)) delete ctx.igroups[group];
  removeMockDevice(d, s.dev);
  delete ctx.objects[id];
}

/** The selftest access fd was closed: the driver unpins everything and destroys its access. */
export function releaseTestAccess(d: Draft<World>, fileId: number): void {
  const f = d.files[fileId] as Draft<AccessFile>;
  const ctx = d.ctxs[f.ctx]!;
  delete d.files[fileId];
  accessDestroy(d, ctx.id, f.access);
  ctx.boundDevices--;
  if (ctx.boundDevices === 0 && !d.files[ctx.file]) releaseCtx(d, ctx.id);
}

/** iommufd_access_get(fd): the caller's fd must be a selftest access file (EBADFD otherwise). */
function accessFile(d: Draft<World>, pid: number, fd: number): AccessFile | Outcome {
  const t = lookupFd(d, pid, fd);
  if (!t) return fail('EBADFD', `fd ${fd} is not open`);
  if (t.file.kind !== 'test-access') return fail('EBADFD', `fd ${fd} is a ${t.file.kind}, not a selftest access fd`);
  return t.file;
}

/**
 * Resolves [va, va+length) of a process like get_user_pages (faulting pages in), page
 * by page: returns the extents and the first address that cannot be reached (or null).
 */
function gup(d: Draft<World>, pid: number, va: bigint, length: bigint, write: boolean): { extents: PageExtent[]; bad: bigint | null } {
  const PAGE = d.platform.pageSize;
  const start = (va / PAGE) * PAGE;
  const end = ((va + length + PAGE - 1n) / PAGE) * PAGE;
  if (end <= start) return { extents: [], bad: null };
  const t = touch(memOf(d), pid, start, end - start, write);
  if (t.ok) {
    d.mem = t.mem;
    return { extents: t.extents, bad: null };
  }
  const badPage = (t.va / PAGE) * PAGE;
  if (badPage > start) {
    const t2 = touch(memOf(d), pid, start, badPage - start, write);
    if (t2.ok) {
      d.mem = t2.mem;
      return { extents: t2.extents, bad: badPage };
    }
  }
  return { extents: [], bad: start };
}

function paAt(extents: readonly PageExtent[], va: bigint): bigint | null {
  for (const e of extents) if (va >= e.va && va < e.va + e.length) return e.pa + (va - e.va);
  return null;
}

function framePins(d: Draft<World>, pa: bigint): number {
  return memOf(d).pinsAt(pa);
}

function ptTarget(ctx: Draft<Ctx>, ptId: number, reserved: number | null): Outcome | null {
  const pt = ctx.objects[ptId];
  if (!pt || ptId === reserved) return fail('ENOENT', `no object with ID ${ptId}`);
  if (pt.type !== 'ioas' && pt.type !== 'hwpt_paging') return fail('EINVAL', `object ${ptId} is a ${pt.type}, neither an IOAS nor an HWPT`);
  return null;
}

const ops: Readonly<Record<number, (d: Draft<World>, ctx: Draft<Ctx>, i: TestIn) => Outcome>> = {
  [TEST_OPS.ADD_RESERVED](_d, ctx, i) {
    const io = ctx.objects[i.f.id];
    if (!io || io.type !== 'ioas') return fail('ENOENT', `no IOAS with ID ${i.f.id}`);
    const last = (i.f.start + i.f.length - 1n) & U64_MAX;
    // start + length - 1 is computed in unsigned long: length 0 or a wrap gives last < start.
    if (last < i.f.start) return ok({}, 'an empty range (last < start) reserves nothing');
    const data = io.data as unknown as IoasData;
    const c = checkReserve(data.areas, data.allowed, i.f.start, last);
    if (!c.ok) return fail('EADDRINUSE', `cannot reserve ${fmtRange(i.f.start, last)}: ${c.reason}`);
    const n = [...data.reserved.entries()].filter((r) => r.owner.startsWith('test:')).length + 1;
    io.data.reserved = data.reserved.add(`test:${n}`, i.f.start, last) as never;
    return ok();
  },

  [TEST_OPS.MOCK_DOMAIN](d, ctx, i) {
    const devFlags = i.f.test_op === TEST_OPS.MOCK_DOMAIN_FLAGS ? i.f.dev_flags : 0;
    // The SELFTEST object's ID is reserved first (iommufd_object_alloc), published last.
    const stdev = allocId(ctx);
    ctx.objects[stdev] = { type: 'selftest', id: stdev, dev: '', idev: 0 };
    if (devFlags & ~VALID_DEV_FLAGS) return fail('EINVAL', `unknown mock device flags 0x${(devFlags & ~VALID_DEV_FLAGS).toString(16)}`);
    const unit = d.platform.units.find((u) => u.format === 'mock');
    if (!unit) return fail('ENODEV', `platform ${d.platform.name} has no mock IOMMU`);
    const name = `iommufd_mock${lowestFree((n) => d.devices[`iommufd_mock${n}`] !== undefined)}`;
    const group = lowestFree((n) => d.groups[n] !== undefined);
    const flags = Object.entries(DEV_FLAG).filter(([b]) => devFlags & Number(b)).map(([, f]) => f);
    const added = addDevice(d, name, unit.name, group, flags);
    if (added) return fail(added.errno, added.reason);
    const claim = claimDmaOwner(d, d.devices[name]!, ctx.id);
    if (!claim.ok) return fail(claim.errno, claim.reason);
    const idev = allocId(ctx);
    ctx.objects[idev] = { type: 'device', id: idev, dev: name, group, attached: null };
    ctx.igroups[group] = { group, hwpt: null, attached: [] };
    const bad = ptTarget(ctx, i.f.id, stdev);
    if (bad) return bad;
    const r = deviceAttach(d, ctx.id, idev, i.f.id);
    if (!r.ok) return fail(r.errno, r.reason);
    ctx.objects[stdev] = { type: 'selftest', id: stdev, dev: name, idev };
    return ok({ out_stdev_id: stdev, out_hwpt_id: r.hwpt, out_idev_id: idev }, `${name} (group ${group}) attached to HWPT ${r.hwpt}`);
  },

  [TEST_OPS.MOCK_DOMAIN_FLAGS](d, ctx, i) {
    return ops[TEST_OPS.MOCK_DOMAIN]!(d, ctx, i);
  },

  [TEST_OPS.MOCK_DOMAIN_REPLACE](d, ctx, i) {
    const s = ctx.objects[i.f.id];
    if (!s || s.type !== 'selftest') return fail('ENOENT', `no SELFTEST object with ID ${i.f.id}`);
    const bad = ptTarget(ctx, i.f.pt_id, null);
    if (bad) return bad;
    const r = deviceReplace(d, ctx.id, s.idev, i.f.pt_id);
    if (!r.ok) return fail(r.errno, r.reason);
    return ok({ pt_id: r.hwpt });
  },

  [TEST_OPS.MD_CHECK_MAP](d, ctx, i) {
    const M = mockPage(d);
    const { iova, length, uptr } = i.f;
    if (iova % M || length % M || uptr % M || uptr + length > U64_MAX)
      return fail('EINVAL', `iova, length and uptr must be multiples of ${M} and uptr + length must not overflow`);
    const h = ctx.objects[i.f.id];
    if (!h || h.type !== 'hwpt_paging') return fail('ENOENT', `no HWPT_PAGING with ID ${i.f.id}`);
    const unit = d.platform.units.find((u) => u.name === h.unit)!;
    if (unit.format !== 'mock') return fail('EINVAL', `HWPT ${h.id} is not a mock domain`);
    const g = gup(d, i.pid, uptr, length, false);
    for (let off = 0n; off < length; off += M) {
      const va = uptr + off;
      if (g.bad !== null && va >= g.bad) return fail('EFAULT', `get_user_pages failed at ${hex(va)} in pid ${i.pid}`);
      const want = paAt(g.extents, va)!;
      const w = hwWalk(d, (h as HwptPagingObj).domain, iova + off);
      if (!w) return fail('EINVAL', `mock domain of HWPT ${h.id} has no translation for ${hex(iova + off)}`);
      if (w.pa !== want) return fail('EINVAL', `mock domain of HWPT ${h.id} maps ${hex(iova + off)} to ${hex(w.pa)}, but ${hex(va)} is at ${hex(want)}`);
    }
    return ok();
  },

  [TEST_OPS.MD_CHECK_REFS](d, _ctx, i) {
    const PAGE = d.platform.pageSize;
    const { length, uptr, refs } = i.f;
    if (length % PAGE || uptr % PAGE || uptr + length > U64_MAX) return fail('EINVAL', `length and uptr must be multiples of ${PAGE}`);
    const g = gup(d, i.pid, uptr, length, false);
    const pm = memOf(d).proc(i.pid);
    for (let off = 0n; off < length; off += PAGE) {
      const va = uptr + off;
      if (g.bad !== null && va >= g.bad) return fail('EFAULT', `get_user_pages failed at ${hex(va)} in pid ${i.pid}`);
      if (vmaAt(pm, va)?.hugetlb) continue; // compound pages are not checked
      const pins = framePins(d, paAt(g.extents, va)!);
      if (pins !== refs) return fail('EIO', `the page at ${hex(va)} has ${pins} pin${pins === 1 ? '' : 's'}, not ${refs}`);
    }
    return ok();
  },

  [TEST_OPS.CREATE_ACCESS](d, ctx, i) {
    if (i.f.flags & ~NEEDS_PIN_PAGES) return fail('EOPNOTSUPP', `unknown flags 0x${(i.f.flags & ~NEEDS_PIN_PAGES).toString(16)}`);
    const id = allocId(ctx);
    ctx.objects[id] = { type: 'access', id, ioas: null, needsPin: (i.f.flags & NEEDS_PIN_PAGES) !== 0, driver: 'selftest', pins: [], nextItem: 0, keepsPins: false };
    const r = accessAttach(d, ctx.id, id, i.f.id);
    if (r) return fail(r.errno, r.reason);
    const { fd } = newFile(d, i.pid, { kind: 'test-access', ctx: ctx.id, access: id });
    ctx.boundDevices++; // the access holds a reference on the iommufd
    return ok({ out_access_fd: fd }, `ACCESS ${id} attached to IOAS ${i.f.id}`);
  },

  [TEST_OPS.ACCESS_REPLACE_IOAS](d, _ctx, i) {
    const f = accessFile(d, i.pid, i.f.id);
    if (isOutcome(f)) return f;
    const r = accessReplace(d, f.ctx, f.access, i.f.ioas_id);
    return r ? fail(r.errno, r.reason) : ok();
  },

  [TEST_OPS.ACCESS_PAGES](d, _ctx, i) {
    const { iova, length, uptr, flags } = i.f;
    if (length > MAX_ACCESS_LENGTH) return fail('ENOMEM', 'the selftest refuses lengths above 16 MiB');
    if (flags & ~(ACCESS_WRITE | ACCESS_SYZ)) return fail('EOPNOTSUPP', `unknown flags 0x${(flags & ~(ACCESS_WRITE | ACCESS_SYZ)).toString(16)}`);
    const f = accessFile(d, i.pid, i.f.id);
    if (isOutcome(f)) return f;
    const acc = accessOf(d, f.ctx, f.access);
    if (!acc.needsPin) return fail('EOPNOTSUPP', `ACCESS ${acc.id} was created without NEEDS_PIN_PAGES`);
    if (flags & ACCESS_SYZ) return fail('EOPNOTSUPP', 'the SYZ iova encoding is not modelled');
    const r = accessPin(d, f.ctx, f.access, iova, length, flags & ACCESS_WRITE);
    if ('errno' in r) return fail(r.errno, r.reason);
    if (uptr !== 0n) {
      // iommufd_test_check_pages: the pinned pages are the pages behind uptr.
      const PAGE = d.platform.pageSize;
      const base = uptr - (iova % PAGE);
      const pinned = pinnedFrames(d, f.ctx, f.access, r.item);
      const g = gup(d, i.pid, base, BigInt(pinned.length) * PAGE, false);
      for (const [k, pa] of pinned.entries()) {
        const va = base + BigInt(k) * PAGE;
        if (g.bad !== null && va >= g.bad) return fail('EFAULT', `get_user_pages failed at ${hex(va)}`);
        if (paAt(g.extents, va) !== pa) return fail('EBADE', `page ${k} pinned at ${hex(pa)} is not the page behind ${hex(va)}`);
      }
    }
    return ok({ out_access_pages_id: r.item });
  },

  [TEST_OPS.ACCESS_RW](d, _ctx, i) {
    const { iova, length, uptr, flags } = i.f;
    if (length > MAX_ACCESS_LENGTH) return fail('ENOMEM', 'the selftest refuses lengths above 16 MiB');
    const known = ACCESS_WRITE | ACCESS_SLOW_PATH | ACCESS_SYZ;
    if (flags & ~known) return fail('EOPNOTSUPP', `unknown flags 0x${(flags & ~known).toString(16)}`);
    const f = accessFile(d, i.pid, i.f.id);
    if (isOutcome(f)) return f;
    const write = (flags & ACCESS_WRITE) !== 0;
    if (write && length > 0n && gup(d, i.pid, uptr, length, false).bad !== null) return fail('EFAULT', `cannot read the ${length}-byte buffer at ${hex(uptr)}`);
    if (flags & ACCESS_SYZ) return fail('EOPNOTSUPP', 'the SYZ iova encoding is not modelled');
    const r = accessRw(d, f.ctx, f.access, iova, length, flags & ACCESS_WRITE);
    if (r) return fail(r.errno, r.reason);
    if (!write && gup(d, i.pid, uptr, length, true).bad !== null) return fail('EFAULT', `cannot write the ${length}-byte buffer at ${hex(uptr)}`);
    return ok();
  },

  [TEST_OPS.DESTROY_ACCESS_PAGES](d, _ctx, i) {
    const f = accessFile(d, i.pid, i.f.id);
    if (isOutcome(f)) return f;
    if (!accessUnpinItem(d, f.ctx, f.access, i.f.access_pages_id)) return fail('ENOENT', `the access holds no item ${i.f.access_pages_id}`);
    return ok();
  },

  [TEST_OPS.DIRTY](d, ctx, i) {
    const { iova, length, page_size: ps, uptr } = i.f;
    if (ps === 0n || length === 0n || iova % ps || length % ps || uptr === 0n)
      return fail('EINVAL', 'page_size and length must be non-zero, iova and length multiples of page_size, uptr non-NULL');
    const h = ctx.objects[i.f.id];
    if (!h || h.type !== 'hwpt_paging') return fail('ENOENT', `no HWPT_PAGING with ID ${i.f.id}`);
    const unit = d.platform.units.find((u) => u.name === h.unit)!;
    if (unit.format !== 'mock') return fail('EINVAL', `HWPT ${h.id} is not a mock domain`);
    if (!getDomain(d.hw as HwState, h.domain).dirtyTracking) return fail('EINVAL', `dirty tracking is off in the domain of HWPT ${h.id}`);
    const max = length / ps;
    // The bitmap buffer (whole unsigned longs) comes from kvzalloc, which refuses sizes above INT_MAX.
    if (((max + 63n) / 64n) * 8n > 0x7fffffffn) return fail('ENOMEM', `a ${max}-bit bitmap is too big to allocate`);
    const bytes = (max + 7n) / 8n;
    if (gup(d, i.pid, uptr, bytes, false).bad !== null) return fail('EFAULT', `cannot read the ${bytes}-byte bitmap at ${hex(uptr)}`);
    const bm = i.f.dirty_bitmap;
    let count = 0n;
    for (let b = 0; b < bm.length && BigInt(b) * 8n < max; b++) {
      for (let k = 0; k < 8; k++) {
        const bit = BigInt(b * 8 + k);
        if (bit >= max || ((bm[b]! >> k) & 1) === 0) continue;
        count++;
        markDirty(d, h.domain, iova + bit * ps);
      }
    }
    return ok({ out_nr_dirty: count }, `${count} IOVA${count === 1n ? '' : 's'} of HWPT ${h.id} marked dirty`);
  },

  [TEST_OPS.SET_TEMP_MEMORY_LIMIT](_d, _ctx, i) {
    if (i.f.limit < 12) return fail('EINVAL', `limit ${i.f.limit} is below the batch element size (12)`);
    return ok({}, 'the batch memory limit only changes how the kernel chunks its work');
  },

  [TEST_OPS.MD_CHECK_IOTLB](_d, _ctx, i) {
    return fail('ENOENT', `no HWPT_NESTED with ID ${i.f.id} (nested HWPTs are not modelled)`);
  },
};

/** The mock driver's set_dirty: the leaf translating `iova` becomes dirty (nothing if unmapped). */
function markDirty(d: Draft<World>, domain: number, iova: bigint): void {
  if (hwWalk(d, domain, iova)) hwMarkDirty(d, domain, iova);
}

/** The frames an access item pinned, one per page, in IOVA order (its out_pages). */
function pinnedFrames(d: Draft<World>, ctxId: number, accId: number, item: number): bigint[] {
  const PAGE = d.platform.pageSize;
  const acc = accessOf(d, ctxId, accId);
  const pin = acc.pins.find((p) => p.item === item)!;
  const out: bigint[] = [];
  for (const piece of pin.pieces) {
    const p = getPages(d, ctxId, piece.pages);
    const u = p.users.find((x) => x.key === piece.key)!;
    for (let idx = u.first; idx <= u.last; idx++) {
      const run = p.pinned.find((r) => r.first <= idx && idx <= r.last)!;
      out.push(run.pa + BigInt(idx - run.first) * PAGE);
    }
  }
  return out;
}

export const selftestHandlers = {
  IOMMU_TEST_CMD(d: Draft<World>, i: InputOf<'IOMMU_TEST_CMD'>): Outcome {
    // The ioctl table lookup comes before any size check: without CONFIG_IOMMUFD_TEST
    // the number is simply unknown.
    const t0 = lookupFd(d, i.pid, i.f.fd);
    if (!t0) return fail('EBADF', `fd ${i.f.fd} is not open in pid ${i.pid}`);
    if (t0.file.kind === 'iommufd' && !d.platform.selftest)
      return fail('ENOTTY', `platform ${d.platform.name} has no CONFIG_IOMMUFD_TEST: IOMMU_TEST_CMD is an unknown ioctl`);
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const run = ops[i.f.test_op];
    if (!run) return fail('EOPNOTSUPP', `test op ${i.f.test_op} is unknown or not modelled`);
    return run(d, ctx, i);
  },
};

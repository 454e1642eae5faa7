/*
 * attach.ts: iommufd_device_attach / _replace / _detach (drivers/iommu/iommufd/
 * device.c). Attachment is per device in the API but per group in the hardware:
 * all attached devices of a group share the igroup's single HWPT, the group is in
 * the blocking domain whenever none of them is attached, and a detached device
 * keeps translating while a group-mate is still attached.
 *
 * Automatic domain selection (attach to an IOAS) tries the IOAS's automatic HWPTs
 * in creation order, treats EINVAL as "incompatible, try the next", and otherwise
 * allocates a new automatic HWPT; an automatic HWPT is freed with its last device.
 */
import type { Draft } from 'immer';
import type { Errno } from '../events/index.js';
import type { DeviceObj, HwptPagingObj, World } from './world.js';
import { setGroupDomain } from './ownership.js';
import { addHwptToIoas, allocHwpt, destroyHwpt, incompatibility } from './hwpt.js';
import { ioasEnforceDevResv, ioasRemoveDevResv } from './ioasDomains.js';
import { hasBug } from './bugs.js';
import { peek } from './peek.js';

export type AttachResult = { ok: true; hwpt: number } | { ok: false; errno: Errno; reason: string };
const no = (errno: Errno, reason: string): AttachResult => ({ ok: false, errno, reason });

function parts(d: Draft<World>, ctxId: number, devId: number) {
  const ctx = d.ctxs[ctxId]!;
  const idev = ctx.objects[devId] as Draft<DeviceObj>;
  const dev = peek(peek(d).devices)[idev.dev]!;
  const igroup = ctx.igroups[idev.group]!;
  return { ctx, idev, dev, igroup };
}

/** iommufd_hw_pagetable_attach. */
function hwptAttach(d: Draft<World>, ctxId: number, devId: number, hwptId: number): AttachResult {
  const { ctx, idev, dev, igroup } = parts(d, ctxId, devId);
  const hwpt = ctx.objects[hwptId] as Draft<HwptPagingObj>;
  if (igroup.hwpt !== null && igroup.hwpt !== hwptId && !hasBug(d, 'attach-mate-other-hwpt'))
    return no('EINVAL', `group ${idev.group} is attached to HWPT ${igroup.hwpt}; every device of a group shares one page table`);
  const resv = ioasEnforceDevResv(d, ctxId, hwpt.ioas, idev.dev);
  if (resv) return no(resv.errno, resv.reason);
  if (igroup.attached.length === 0) {
    const g = d.groups[idev.group]!;
    if (g.domain.kind !== 'default' && g.domain.kind !== 'blocking') {
      ioasRemoveDevResv(d, ctxId, hwpt.ioas, idev.dev);
      return no('EBUSY', `group ${g.id} is in another domain`);
    }
    const why = incompatibility(d, hwpt, dev);
    if (why) {
      ioasRemoveDevResv(d, ctxId, hwpt.ioas, idev.dev);
      return no('EINVAL', why);
    }
    setGroupDomain(d, g.id, { kind: 'hwpt', ctx: ctxId, hwpt: hwptId, domain: hwpt.domain });
    igroup.hwpt = hwptId;
  }
  igroup.attached = [...peek(igroup.attached), devId];
  idev.attached = hwptId;
  hwpt.devices++;
  return { ok: true, hwpt: hwptId };
}

/** iommufd_device_do_replace: the whole group moves to `hwptId`. */
function hwptReplace(d: Draft<World>, ctxId: number, devId: number, hwptId: number): AttachResult {
  const { ctx, idev, dev, igroup } = parts(d, ctxId, devId);
  if (igroup.hwpt === null) return no('EINVAL', `group ${idev.group} is not attached`);
  if (igroup.hwpt === hwptId) return { ok: true, hwpt: hwptId };
  const old = ctx.objects[igroup.hwpt] as Draft<HwptPagingObj>;
  const next = ctx.objects[hwptId] as Draft<HwptPagingObj>;
  const members = igroup.attached.map((id) => (ctx.objects[id] as DeviceObj).dev);
  const moveIoas = old.ioas !== next.ioas;
  if (moveIoas) {
    for (const [k, m] of members.entries()) {
      const r = ioasEnforceDevResv(d, ctxId, next.ioas, m);
      if (r) {
        for (const undo of members.slice(0, k)) ioasRemoveDevResv(d, ctxId, next.ioas, undo);
        return no(r.errno, r.reason);
      }
    }
  }
  const why = incompatibility(d, next, dev);
  if (why) {
    if (moveIoas) for (const m of members) ioasRemoveDevResv(d, ctxId, next.ioas, m);
    return no('EINVAL', why);
  }
  setGroupDomain(d, idev.group, { kind: 'hwpt', ctx: ctxId, hwpt: hwptId, domain: next.domain });
  if (moveIoas) for (const m of members) ioasRemoveDevResv(d, ctxId, old.ioas, m);
  igroup.hwpt = hwptId;
  for (const id of igroup.attached) (ctx.objects[id] as Draft<DeviceObj>).attached = hwptId;
  next.devices += igroup.attached.length;
  old.devices -= igroup.attached.length;
  if (old.auto && old.devices === 0) destroyHwpt(d, ctxId, old.id);
  return { ok: true, hwpt: hwptId };
}

type Doer = typeof hwptAttach;

/** iommufd_device_auto_get_domain. */
function autoDomain(d: Draft<World>, ctxId: number, devId: number, ioasId: number, doIt: Doer, immediate: boolean): AttachResult {
  const ctx = d.ctxs[ctxId]!;
  const ioas = peek(peek(ctx.objects)[ioasId])!;
  if (ioas.type !== 'ioas') throw new Error('auto domain on a non-IOAS');
  for (const h of [...peek(peek(ioas.data).hwpts)]) {
    const cand = peek(peek(ctx.objects)[h]) as HwptPagingObj;
    if (!cand.auto) continue;
    const r = doIt(d, ctxId, devId, h);
    if (r.ok || r.errno !== 'EINVAL') return r;
  }
  const { dev } = parts(d, ctxId, devId);
  const id = allocHwpt(d, ctxId, ioasId, dev, { auto: true, nestParent: false, dirtyTracking: false });
  if (immediate) {
    const r = doIt(d, ctxId, devId, id);
    if (!r.ok) return r;
    const add = addHwptToIoas(d, ctxId, id);
    if (add) return no(add.errno, add.reason);
    return r;
  }
  const add = addHwptToIoas(d, ctxId, id);
  if (add) return no(add.errno, add.reason);
  return doIt(d, ctxId, devId, id);
}

function target(d: Draft<World>, ctxId: number, ptId: number): 'ioas' | 'hwpt' {
  return peek(peek(peek(peek(d).ctxs)[ctxId]!.objects)[ptId])!.type === 'ioas' ? 'ioas' : 'hwpt';
}

export function deviceAttach(d: Draft<World>, ctxId: number, devId: number, ptId: number): AttachResult {
  if (target(d, ctxId, ptId) === 'ioas') return autoDomain(d, ctxId, devId, ptId, hwptAttach, true);
  return hwptAttach(d, ctxId, devId, ptId);
}

export function deviceReplace(d: Draft<World>, ctxId: number, devId: number, ptId: number): AttachResult {
  if (target(d, ctxId, ptId) === 'ioas') {
    return autoDomain(d, ctxId, devId, ptId, hwptReplace, false);
  }
  return hwptReplace(d, ctxId, devId, ptId);
}

/** iommufd_device_detach: cannot fail. */
export function deviceDetach(d: Draft<World>, ctxId: number, devId: number): void {
  const { ctx, idev, igroup } = parts(d, ctxId, devId);
  const hwptId = idev.attached!;
  const hwpt = ctx.objects[hwptId] as Draft<HwptPagingObj>;
  igroup.attached = igroup.attached.filter((x) => x !== devId);
  if (igroup.attached.length === 0) {
    setGroupDomain(d, idev.group, { kind: 'blocking' });
    igroup.hwpt = null;
  }
  ioasRemoveDevResv(d, ctxId, hwpt.ioas, idev.dev);
  idev.attached = null;
  hwpt.devices--;
  if (hwpt.auto && hwpt.devices === 0) destroyHwpt(d, ctxId, hwptId);
}

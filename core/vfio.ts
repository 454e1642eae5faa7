/*
 * vfio.ts: the VFIO device cdev (drivers/vfio/device_cdev.c, vfio/iommufd.c):
 * VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT,
 * VFIO_DEVICE_DETACH_IOMMUFD_PT, and unbind on close.
 *
 * Invariant: from bind to unbind the device's group is in a security context
 * (blocking, or a domain of the binding iommufd); access to the device (every ioctl
 * but bind) is granted only after bind succeeded.
 */
import { castDraft, type Draft } from 'immer';
import { fail, isOutcome, ok, type InputOf, type Outcome } from '../events/index.js';
import type { OpenFile, World } from './world.js';
import { peek } from './peek.js';
import { ioctlPrologue, lookupFd } from './ioctl.js';
import { allocId } from './objects.js';
import { claimDmaOwner, releaseDmaOwner } from './ownership.js';
import { deviceAttach, deviceDetach, deviceReplace } from './attach.js';
import { releaseCtx } from './ctx.js';
import { accessAttach, accessDestroy, accessDetach, accessReplace, newAccess } from './access.js';

/** Number of open VFIO cdev files of a device (each keeps it registered). */
export function vfioUsers(d: Draft<World>, dev: string): number {
  let n = 0;
  for (const x of Object.values(peek(peek(d).files))) {
    const f = peek(x);
    if (f.kind === 'vfio-cdev' && f.dev === dev) n++;
  }
  return n;
}

type CdevFile = Extract<OpenFile, { kind: 'vfio-cdev' }>;

export const vfioHandlers = {
  VFIO_DEVICE_BIND_IOMMUFD(d: Draft<World>, i: InputOf<'VFIO_DEVICE_BIND_IOMMUFD'>): Outcome {
    const t = ioctlPrologue(d, i);
    if (isOutcome(t)) return t;
    const file = t.file as CdevFile;
    if (i.f.flags !== 0) return fail('EINVAL', `flags 0x${i.f.flags.toString(16)} must be 0 (VFIO rejects unknown flags with EINVAL)`);
    if (i.f.iommufd < 0) return fail('EINVAL', `iommufd ${i.f.iommufd} is negative`);
    if (file.bound) return fail('EINVAL', `this device fd is already bound (devid ${file.bound.devId})`);
    const it = lookupFd(d, i.pid, i.f.iommufd);
    if (!it) return fail('EBADF', `iommufd ${i.f.iommufd} is not an open fd`);
    if (it.file.kind !== 'iommufd') return fail('EBADFD', `fd ${i.f.iommufd} is a ${it.file.kind}, not an iommufd`);
    const dev = peek(peek(d).devices)[file.dev]!;
    for (const x of Object.values(peek(peek(d).files))) {
      const f = peek(x);
      if (f.kind === 'vfio-cdev' && f.dev === dev.name && f.bound)
        return fail('EINVAL', `${dev.name} is already open through another cdev fd (bound as devid ${f.bound.devId}); a cdev device may be opened once`);
    }
    if (dev.removePending) return fail('ENODEV', `${dev.name} is being removed`);
    if (dev.flags.includes('NON_COHERENT')) return fail('EINVAL', `the IOMMU of ${dev.name} lacks IOMMU_CAP_CACHE_COHERENCY`);
    if (dev.flags.includes('UNSAFE_MSI'))
      return fail('EPERM', `group ${dev.group} has no MSI isolation (interrupt remapping) and allow_unsafe_interrupts is off`);
    const ctxId = it.file.ctx;
    const claim = claimDmaOwner(d, dev, ctxId);
    if (!claim.ok) return fail(claim.errno, claim.reason);
    const ctx = d.ctxs[ctxId]!;
    const id = allocId(ctx);
    if (dev.flags.includes('EMULATED')) {
      ctx.objects[id] = castDraft(newAccess(id, true, 'vfio'));
    } else {
      ctx.objects[id] = { type: 'device', id, dev: dev.name, group: dev.group, attached: null };
      if (!ctx.igroups[dev.group]) ctx.igroups[dev.group] = { group: dev.group, hwpt: null, attached: [] };
    }
    ctx.boundDevices++;
    (d.files[t.fileId] as Draft<CdevFile>).bound = { ctx: ctxId, devId: id, ctxFile: it.fileId };
    return ok({ out_devid: id });
  },

  VFIO_DEVICE_ATTACH_IOMMUFD_PT(d: Draft<World>, i: InputOf<'VFIO_DEVICE_ATTACH_IOMMUFD_PT'>): Outcome {
    const t = ioctlPrologue(d, i);
    if (isOutcome(t)) return t;
    const file = t.file as CdevFile;
    if (i.f.flags !== 0) return fail('EINVAL', `flags 0x${i.f.flags.toString(16)}: PASID attach is not modelled, and unknown flags are EINVAL`);
    const b = file.bound!;
    const ctx = d.ctxs[b.ctx]!;
    const target = ctx.objects[i.f.pt_id];
    const self = ctx.objects[b.devId]!;
    if (self.type === 'access') {
      // vfio_iommufd_emulated_attach_ioas: iommufd_access_attach, or _replace once attached;
      // anything but an IOAS is ENOENT (iommufd_get_ioas). pt_id is returned unchanged.
      const r = self.ioas === null ? accessAttach(d, b.ctx, self.id, i.f.pt_id) : accessReplace(d, b.ctx, self.id, i.f.pt_id);
      if (r) return fail(r.errno, r.reason);
      return ok({ pt_id: i.f.pt_id });
    }
    if (!target) return fail('ENOENT', `no object with ID ${i.f.pt_id}`);
    if (target.type !== 'ioas' && target.type !== 'hwpt_paging')
      return fail('EINVAL', `object ${i.f.pt_id} is a ${target.type}, neither an IOAS nor an HWPT`);
    if (self.type !== 'device') throw new Error('bound cdev without a device object');
    const r = self.attached === null ? deviceAttach(d, b.ctx, self.id, i.f.pt_id) : deviceReplace(d, b.ctx, self.id, i.f.pt_id);
    if (!r.ok) return fail(r.errno, r.reason);
    return ok({ pt_id: r.hwpt });
  },

  VFIO_DEVICE_DETACH_IOMMUFD_PT(d: Draft<World>, i: InputOf<'VFIO_DEVICE_DETACH_IOMMUFD_PT'>): Outcome {
    const t = ioctlPrologue(d, i);
    if (isOutcome(t)) return t;
    const file = t.file as CdevFile;
    if (i.f.flags !== 0) return fail('EINVAL', `flags 0x${i.f.flags.toString(16)}: PASID detach is not modelled, and unknown flags are EINVAL`);
    const b = file.bound!;
    const self = d.ctxs[b.ctx]!.objects[b.devId]!;
    if (self.type === 'device' && self.attached !== null) deviceDetach(d, b.ctx, self.id);
    if (self.type === 'access') accessDetach(d, b.ctx, self.id);
    return ok();
  },
};

/** Unbind on close (vfio_df_unbind_iommufd): detach, destroy the object, release ownership, drop the ctx. */
export function unbindDevice(d: Draft<World>, fileId: number): void {
  const f = d.files[fileId] as Draft<CdevFile>;
  const b = f.bound!;
  const ctx = d.ctxs[b.ctx]!;
  const obj = ctx.objects[b.devId]!;
  if (obj.type === 'device' && obj.attached !== null) deviceDetach(d, b.ctx, obj.id);
  if (obj.type === 'access') accessDestroy(d, b.ctx, obj.id);
  delete ctx.objects[b.devId];
  const dev = peek(peek(d).devices)[f.dev]!;
  releaseDmaOwner(d, dev.group);
  const ig = ctx.igroups[dev.group];
  if (ig && ig.hwpt === null && !Object.values(peek(ctx.objects)).some((x) => { const o = peek(x); return o.type === 'device' && o.group === dev.group; })) delete ctx.igroups[dev.group];
  f.bound = null;
  ctx.boundDevices--;
  if (ctx.boundDevices === 0 && !d.files[ctx.file]) releaseCtx(d, ctx.id);
}

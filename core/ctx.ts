/*
 * ctx.ts: the iommufd context: its objects' lifecycle. IOMMU_IOAS_ALLOC,
 * IOMMU_DESTROY (never cascades: EBUSY while anything uses the object, ENOENT for
 * an unknown ID), and the release of a ctx when its file is closed and no bound
 * device holds it, which destroys objects leaves first until none is left.
 */
import { castDraft, type Draft } from 'immer';
import { fail, isOutcome, ok, type InputOf, type Outcome } from '../events/index.js';
import type { Obj, World } from './world.js';
import { iommufdPrologue } from './ioctl.js';
import { allocId, busyReason, objName } from './objects.js';
import { destroyHwpt } from './hwpt.js';
import { emptyIoasData } from './ioasData.js';
import { destroyIoasData } from './ioasDestroy.js';
import { destroyStdev } from './selftest.js';
import { peek } from './peek.js';

/** Destroys one object that has no users (the caller checked busyReason). */
function destroyObject(d: Draft<World>, ctxId: number, id: number): void {
  const ctx = d.ctxs[ctxId]!;
  const o = ctx.objects[id]!;
  switch (o.type) {
    case 'ioas':
      destroyIoasData(d, ctxId, id);
      delete ctx.objects[id];
      if (ctx.vfioIoas === id) ctx.vfioIoas = null;
      return;
    case 'hwpt_paging':
      destroyHwpt(d, ctxId, id);
      return;
    case 'selftest':
      destroyStdev(d, ctxId, id);
      return;
    case 'device':
    case 'access':
      throw new Error(`${objName(o)} is destroyed only by its driver`);
  }
}

/** iommufd_fops_release: destroy every destroyable object, repeatedly, until empty. */
export function releaseCtx(d: Draft<World>, ctxId: number): void {
  const ctx = d.ctxs[ctxId]!;
  for (;;) {
    const ids = Object.keys(ctx.objects).map(Number);
    if (ids.length === 0) break;
    let progressed = false;
    for (const id of ids) {
      const o = peek(peek(ctx.objects)[id]);
      if (o && busyReason(o as Obj) === null) {
        destroyObject(d, ctxId, id);
        progressed = true;
      }
    }
    if (!progressed) throw new Error(`ctx ${ctxId} release stuck on objects ${ids.join(', ')}`);
  }
  delete d.ctxs[ctxId];
}

export const ctxHandlers = {
  IOMMU_IOAS_ALLOC(d: Draft<World>, i: InputOf<'IOMMU_IOAS_ALLOC'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    if (i.f.flags !== 0) return fail('EOPNOTSUPP', `flags 0x${i.f.flags.toString(16)} must be 0`);
    const id = allocId(ctx);
    ctx.objects[id] = { type: 'ioas', id, data: castDraft(emptyIoasData()) };
    return ok({ out_ioas_id: id });
  },

  IOMMU_DESTROY(d: Draft<World>, i: InputOf<'IOMMU_DESTROY'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const o = peek(peek(ctx.objects)[i.f.id]);
    if (!o) return fail('ENOENT', `no object with ID ${i.f.id}`);
    const busy = busyReason(o as Obj);
    if (busy) return fail('EBUSY', busy);
    destroyObject(d, ctx.id, i.f.id);
    return ok();
  },
};
